"""Class-conditional GAN: label embedding in the generator (Mirza & Osindero 2014) and a projection
discriminator (Miyato & Koyama 2018), with an auxiliary-classifier option (AC-GAN, Odena et al. 2017)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge import losses
from ganforge.errors import GanforgeError
from ganforge.families import register
from ganforge.families.base import Batch, Capabilities
from ganforge.families.kinds.noise import Conditional, NoiseGAN, NoiseOptions
from ganforge.nn import conv_block, init_dcgan_weights
from ganforge.nn.dcgan import Generator, widths
from ganforge.nn.layers import check_norm, spectral
from ganforge.nn.resblocks import ProjectionHead


class ConditionalGenerator(nn.Module):
    """DCGAN generator fed [z, embed(y)]."""

    def __init__(self, latent_dim: int, n_classes: int, embed_dim: int, channels: int, resolution: int, width: int,
                 norm: str):
        super().__init__()
        self.embed = nn.Embedding(n_classes, embed_dim)
        self.net = Generator(latent_dim + embed_dim, channels, resolution, width, norm, "transpose")

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, self.embed(labels)], 1))


class ConditionalDiscriminator(nn.Module):
    """DCGAN-style strided convolutions to a feature vector, then a projection head and an optional class head."""

    def __init__(self, channels: int, resolution: int, n_classes: int, width: int, norm: str, projection: bool,
                 auxiliary: bool):
        super().__init__()
        chans = widths(resolution, width)[::-1]
        first = "spectral" if norm == "spectral" else "none"
        layers = [conv_block(nn.Conv2d(channels, chans[0], 4, 2, 1), first, chans[0], nn.LeakyReLU(0.2, True))]
        for a, b in zip(chans, chans[1:]):
            layers.append(conv_block(nn.Conv2d(a, b, 4, 2, 1, bias=False), norm, b, nn.LeakyReLU(0.2, True)))
        self.features = nn.Sequential(*layers, nn.Flatten())
        features = chans[-1] * 16
        self.head = ProjectionHead(features, n_classes if projection else 0, first)
        self.classifier = spectral(nn.Linear(features, n_classes), first) if auxiliary else None
        self.class_logits: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        if self.classifier is not None:
            self.class_logits = self.classifier(h)  # read by the AC-GAN loss right after this call
        return self.head(h, labels)


@dataclass
class CGANOptions(NoiseOptions):
    embed_dim: int = 32  # size of the generator's label embedding
    projection: bool = True  # projection discriminator; off: the label reaches D only through the AC head
    auxiliary: bool = False  # AC-GAN class head on D, trained on real and generated images
    auxiliary_weight: float = 1.0


@register
class CGAN(Conditional, NoiseGAN):
    """Class-conditional DCGAN-style GAN with a projection discriminator (and optional AC-GAN head)."""

    name = "cgan"
    Options = CGANOptions
    capabilities = Capabilities(conditional=True)
    # the projection-discriminator paper's recipe: hinge loss, spectral norm in D, Adam(2e-4, 0, 0.9), n_dis 5
    preset = {"model": {"loss": "hinge", "d_norm": "spectral", "g_norm": "batch"},
              "train": {"lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.0, "beta2": 0.9, "n_critic": 5}}

    def __init__(self, config, info):
        super().__init__(config, info)
        self.check_classes()
        model, o = config.model, self.options
        check_norm(model.g_norm, "model.g_norm")
        check_norm(model.d_norm, "model.d_norm")
        if not (o.projection or o.auxiliary):
            raise GanforgeError("model.options: cgan needs projection or auxiliary (or both) to see the labels")
        if not 8 <= info.resolution <= 256:
            raise GanforgeError(f"data.resolution: cgan supports 8 to 256 pixels, got {info.resolution}")
        self.generator = ConditionalGenerator(model.latent_dim, info.n_classes, o.embed_dim, info.channels,
                                              info.resolution, model.width, model.g_norm)
        self.discriminator = ConditionalDiscriminator(info.channels, info.resolution, info.n_classes, model.width,
                                                      model.d_norm, o.projection, o.auxiliary)
        init_dcgan_weights(self)

    def loss(self, phase: str, batch: Batch):
        if not self.options.auxiliary:
            return super().loss(phase, batch)
        # AC-GAN: D learns to classify real images, G to make images D classifies as the requested class
        model = self.config.model
        inputs = self.generator_inputs(batch)
        weight = self.options.auxiliary_weight
        if phase == "G":
            fake = self.generate(self.generator, inputs)
            adversarial = losses.generator_loss(model.loss, self.critic(fake, inputs))
            classify = F.cross_entropy(self.discriminator.class_logits, inputs["label"])
            return adversarial + weight * classify, {"g_loss": adversarial.detach(), "g_class": classify.detach()}
        loss, logs = super().loss(phase, batch)
        self.critic(batch["image"], batch)
        classify = F.cross_entropy(self.discriminator.class_logits, batch["label"])
        logs["d_class"] = classify.detach()
        return loss + weight * classify, logs
