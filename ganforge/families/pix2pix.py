"""pix2pix (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks").

A U-Net generator with dropout maps A to B; a PatchGAN discriminator judges (A, B) pairs patch by patch; the
generator minimises adversarial + lambda * L1(G(A), B) with lambda = 100 (eq. 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.config import option
from ganforge.errors import GanforgeError
from ganforge.families import register
from ganforge.families.base import Batch, Capabilities, Phase
from ganforge.families.kinds.image_to_image import ImageToImage, adversarial_losses
from ganforge.nn import init_dcgan_weights
from ganforge.nn.patchgan import PatchDiscriminator, min_input_size
from ganforge.nn.unet import UNetGenerator

PIXEL_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}


@dataclass
class Pix2PixOptions:
    pixel_loss: str = option("l1", choices=("l1", "mse"))  # l1 (the paper) | mse: the conditional mean, what PSNR scores; L1's median stays at
    # the identity where a restoration (e.g. a faint watermark) is uncertain, so MSE suits sparse corrections
    pixel_weight: float = 100.0  # lambda of eq. 4
    d_layers: int = 3  # strided PatchGAN layers: 3 -> 70x70 patches, 1 -> 16x16, 4 -> 142x142
    unet_depth: int = 0  # stride-2 U-Net stages; 0: log2(resolution), down to 1x1 (8 at 256 px)
    dropout: float = 0.5
    upsample: str = option("transpose", choices=("transpose", "resize"))  # resize: nearest resize + conv, avoids
    # checkerboard artefacts
    direction: str = option("AtoB", choices=("AtoB", "BtoA"))  # which domain is the input
    load_size: int = 0  # shorter side images are held at before random crops; 0: resolution * 1.125
    decay_start: float = option(1.0, interval="[0, 1]")  # fraction of train.steps after which learning rates decay linearly to 0 (1: none)
    residual: bool = False  # output = input + G(input), clamped: for restoration (denoise, watermark removal)


@register
class Pix2Pix(ImageToImage):
    """Paired translation: U-Net generator, conditional PatchGAN discriminator, L1 + adversarial loss."""

    name = "pix2pix"
    data_kind = "paired"
    Options = Pix2PixOptions
    capabilities = Capabilities(from_noise=False, translate=("AtoB", "BtoA"))  # the instance: its trained one
    tiny = {"model": {"options": {"d_layers": 1}}}
    preset = {
        "data": {"flip": True},  # resolution from the data: the largest power of two that fits, up to 256
        "model": {"width": 64, "g_norm": "batch", "d_norm": "batch", "loss": "nonsaturating"},
        "train": {"batch_size": 1, "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999, "ema": 0.0},
    }

    def __init__(self, config, info):
        super().__init__(config, info)
        o = self.options
        self.capabilities = replace(self.capabilities, translate=(o.direction,))
        depth = o.unet_depth or int(math.log2(info.resolution))
        if not 1 <= depth <= int(math.log2(info.resolution)):
            raise GanforgeError(f"model.options.unet_depth must be 1 to {int(math.log2(info.resolution))} at "
                                f"{info.resolution} px, got {o.unet_depth}")
        if o.d_layers < 1 or min_input_size(o.d_layers) > info.resolution:
            raise GanforgeError(f"model.options.d_layers {o.d_layers} needs crops of at least "
                                f"{min_input_size(max(o.d_layers, 1))} px, data.resolution is {info.resolution}")
        m = config.model
        self.generator = UNetGenerator(info.channels, info.channels, depth, m.width, m.g_norm, o.dropout, o.upsample)
        self.discriminator = PatchDiscriminator(2 * info.channels, m.width, o.d_layers, m.d_norm)
        self.stride = self.generator.stride
        init_dcgan_weights(self)
        if o.residual:  # start as the identity: the output layer adds nothing until training asks it to
            last = [m for m in self.generator.up[-1].modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))][-1]
            nn.init.zeros_(last.weight)
        self._fake: torch.Tensor | None = None

    def phases(self) -> list[Phase]:
        t = self.config.train
        return [Phase("G", "generator", t.lr_g, (t.beta1, t.beta2)),
                Phase("D", "discriminator", t.lr_d, (t.beta1, t.beta2))]

    def translate(self, generator: nn.Module, images: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        if direction != self.options.direction:
            raise GanforgeError(f"this pix2pix model was trained {self.options.direction} only; "
                                f"--direction {direction} needs a model trained that way")
        out = generator(images)
        return (images + out).clamp(-1, 1) if self.options.residual else out

    def loss(self, phase: str, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        source, target = self.source_target(batch)
        kind = self.config.model.loss
        if phase == "G":
            fake = self.translate(self.generator, source, self.options.direction)
            self._fake = fake.detach()
            adversarial = adversarial_losses(kind, None, self.discriminator(torch.cat([source, fake], 1)), "G")
            pixel = PIXEL_LOSSES[self.options.pixel_loss](fake, target)
            loss = adversarial + self.options.pixel_weight * pixel
            return loss, {"g_adv": adversarial.detach(), self.options.pixel_loss: pixel.detach()}
        fake = self._fake if self._fake is not None and self._fake.shape == target.shape else None
        if fake is None:
            with torch.no_grad():
                fake = self.translate(self.generator, source, self.options.direction)
        self._fake = None
        real_logits = self.discriminator(torch.cat([source, target], 1))
        fake_logits = self.discriminator(torch.cat([source, fake], 1))
        loss = adversarial_losses(kind, real_logits, fake_logits, "D")
        return loss, {"d_loss": loss.detach(), "d_real": real_logits.detach().mean(),
                      "d_fake": fake_logits.detach().mean()}
