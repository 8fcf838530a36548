"""VAE-GAN (Larsen et al. 2016): an encoder and a KL prior turn the generator into a VAE decoder whose
reconstruction error is measured in the discriminator's feature space instead of pixels.

Phases per step: D (real vs. reconstructed and prior samples), E (KL + feature reconstruction), G (gamma *
feature reconstruction + fooling D with both kinds of fakes), each on the same batch, as in the paper's Algorithm 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ganforge import losses
from ganforge.config import option
from ganforge.errors import GanforgeError
from ganforge.families import register
from ganforge.families.base import Batch, Capabilities, Phase
from ganforge.families.kinds.noise import NoiseGAN, NoiseOptions
from ganforge.nn.dcgan import Generator, widths
from ganforge.nn import conv_block, init_dcgan_weights


def strided_features(channels: int, resolution: int, width: int, norm: str) -> nn.Sequential:
    """Strided 4x4 convolutions down to 4x4, doubling the channels (DCGAN discriminator body)."""
    chans = widths(resolution, width)[::-1]
    layers = [conv_block(nn.Conv2d(channels, chans[0], 4, 2, 1), "none", chans[0], nn.LeakyReLU(0.2, True))]
    for a, b in zip(chans, chans[1:]):
        layers.append(conv_block(nn.Conv2d(a, b, 4, 2, 1, bias=False), norm, b, nn.LeakyReLU(0.2, True)))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """x -> (mu, log sigma^2) of q(z|x)."""

    def __init__(self, latent_dim: int, channels: int, resolution: int, width: int):
        super().__init__()
        self.body = nn.Sequential(strided_features(channels, resolution, width, "batch"), nn.Flatten())
        self.head = nn.Linear(widths(resolution, width)[0] * 16, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.body(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)


class FeatureDiscriminator(nn.Module):
    """DCGAN discriminator that also returns its last convolutional features (the paper's Dis_l)."""

    def __init__(self, channels: int, resolution: int, width: int, norm: str):
        super().__init__()
        self.body = strided_features(channels, resolution, width, norm)
        self.head = nn.Conv2d(widths(resolution, width)[0], 1, 4, 1, 0)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.head(h).flatten(), h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]


@dataclass
class VAEGANOptions(NoiseOptions):
    gamma: float = option(0.01, interval="[0, inf)")  # weight of the feature reconstruction against the GAN loss in the decoder's update
    kl_weight: float = option(1.0, interval="[0, inf)")
    optimizer: str = option("rmsprop", choices=("rmsprop", "adam"))  # rmsprop (the paper's) | adam (with train.beta1/beta2)


@register
class VAEGAN(NoiseGAN):
    """Encoder + decoder (the generator) + discriminator; `encode`/`reconstruct` map real images to latents."""

    name = "vaegan"
    Options = VAEGANOptions
    capabilities = Capabilities(encode=True)  # DiffAugment (option) reaches D's adversarial inputs only
    # ganforge's default, tuned for small budgets (issue 20): the best trial of a `ganforge tune` search on digits at
    # 60 CPU seconds per trial (benchmarks/presets/tune-vaegan-digits, docs/tuning.md): the paper's networks, losses
    # and KL weight with Adam (0.5, 0.999) at 1.1e-3 (encoder, decoder) / 9.2e-4 (D), gamma 0.043 and an EMA of the
    # decoder
    # (below: Larsen et al. 2016, `--preset paper`)
    presets = {"paper": {"model": {"loss": "nonsaturating", "penalty": "none", "latent_dim": 128, "g_norm": "batch",
                                   "d_norm": "batch"},
                         "train": {"lr_g": 3e-4, "lr_d": 3e-4, "n_critic": 1, "ema": 0.0}}}
    preset = {"model": presets["paper"]["model"] | {"options": {"optimizer": "adam", "gamma": 0.043}},
              "train": presets["paper"]["train"] | {"lr_g": 1.1e-3, "lr_d": 9.2e-4, "beta1": 0.5, "beta2": 0.999,
                                                    "ema": 0.999}}
    # Larsen et al. 2016 (`presets["paper"]` above): DCGAN-like networks with batch norm, RMSprop at 3e-4 for encoder,
    # decoder and D, gamma 0.01 (the options' defaults) and no EMA (the default before issue 20's retune; exactly the
    # config it resolved to)

    def __init__(self, config, info):
        super().__init__(config, info)
        model, o = config.model, self.options
        if not 8 <= info.resolution <= 256:
            raise GanforgeError(f"data.resolution: vaegan supports 8 to 256 pixels, got {info.resolution}")
        if o.optimizer not in ("rmsprop", "adam"):
            raise GanforgeError(f"model.options.optimizer must be rmsprop or adam, got '{o.optimizer}'")
        self.encoder = Encoder(model.latent_dim, info.channels, info.resolution, model.width)
        self.generator = Generator(model.latent_dim, info.channels, info.resolution, model.width, model.g_norm,
                                   "transpose")
        self.discriminator = FeatureDiscriminator(info.channels, info.resolution, model.width, model.d_norm)
        init_dcgan_weights(self)

    def phases(self) -> list[Phase]:
        t = self.config.train
        kind = self.options.optimizer
        return [Phase("D", "discriminator", t.lr_d, (t.beta1, t.beta2), repeat=t.n_critic, optimizer=kind),
                Phase("E", "encoder", t.lr_g, (t.beta1, t.beta2), optimizer=kind),
                Phase("G", "generator", t.lr_g, (t.beta1, t.beta2), optimizer=kind)]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The posterior mean latent of each image in [-1, 1]."""
        return self.encoder(images)[0]

    def reconstruct(self, generator: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """Images decoded from their own posterior mean latents."""
        return generator(self.encode(images))

    def loss(self, phase: str, batch: Batch):
        model, o = self.config.model, self.options
        real = batch["image"]
        prior = self.noise(real.shape[0], real.device)
        with torch.set_grad_enabled(phase == "E"):
            mu, logvar = self.encoder(real)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        if phase == "D":
            with torch.no_grad():
                fakes = torch.cat([self.generator(z), self.generator(prior)])
            real_logits, fake_logits = self.critic(real, batch), self.critic(fakes, batch)
            loss = losses.discriminator_loss(model.loss, real_logits, fake_logits)
            return loss, {"d_loss": loss.detach(), "d_real": real_logits.detach().mean(),
                          "d_fake": fake_logits.detach().mean()}
        recon = self.generator(z)
        _, recon_features = self.discriminator.features(recon)
        with torch.no_grad():
            _, real_features = self.discriminator.features(real)
        # Gaussian log-likelihood in feature space (eq. 8): half the squared error summed over features
        feature_error = 0.5 * (recon_features - real_features).square().flatten(1).sum(1).mean()
        if phase == "E":
            kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(1).mean()
            loss = o.kl_weight * kl + feature_error
            return loss, {"kl": kl.detach(), "feature_error": feature_error.detach()}
        fakes = torch.cat([recon, self.generator(prior)])
        adversarial = losses.generator_loss(model.loss, self.critic(fakes, batch))
        return o.gamma * feature_error + adversarial, {"g_loss": adversarial.detach()}
