"""ESRGAN (Wang et al. 2018): RRDB generator without batch norm and a relativistic average discriminator.

Training follows the paper: a PSNR-oriented generator first (L1 only: `pretrain_steps`, or a separate run passed as
`pretrained=RUN`), then GAN fine-tuning with L1 1e-2, VGG conv5_4 (before activation) L1 1.0 and relativistic
adversarial 5e-3. Network interpolation between the PSNR and GAN weights (`ganforge.upscale.interpolate_states`) trades
fidelity for texture at inference (`ganforge upscale --alpha`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.config import option
from ganforge.families import register
from ganforge.families.kinds.super_resolution import SROptions, SuperResolution
from ganforge.nn.srresnet import upsample_steps

RESIDUAL_SCALE = 0.2  # residual scaling beta of the paper (sec. 3.1)


class DenseBlock(nn.Module):
    """Residual dense block: five 3x3 convs, each seeing all earlier features."""

    def __init__(self, width: int, growth: int):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(width + i * growth, growth if i < 4 else width, 3, 1, 1) for i in range(5))

    def forward(self, x):
        features = [x]
        for i, conv in enumerate(self.convs):
            out = conv(torch.cat(features, 1))
            if i < 4:
                features.append(F.leaky_relu(out, 0.2))
        return x + RESIDUAL_SCALE * out


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks inside a scaled residual."""

    def __init__(self, width: int, growth: int):
        super().__init__()
        self.blocks = nn.Sequential(*(DenseBlock(width, growth) for _ in range(3)))

    def forward(self, x):
        return x + RESIDUAL_SCALE * self.blocks(x)


class RRDBNet(nn.Module):
    """ESRGAN's generator: RRDB trunk with a long skip, nearest-neighbour upsampling + conv, two output convs."""

    def __init__(self, channels: int, width: int, blocks: int, growth: int, scale: int):
        super().__init__()
        self.head = nn.Conv2d(channels, width, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(width, growth) for _ in range(blocks)), nn.Conv2d(width, width, 3, 1, 1))
        self.factors = upsample_steps(scale)
        self.upconvs = nn.ModuleList(nn.Conv2d(width, width, 3, 1, 1) for _ in self.factors)
        self.tail = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), nn.LeakyReLU(0.2, True),
                                  nn.Conv2d(width, channels, 3, 1, 1))
        for m in self.modules():  # small init keeps the deep residual trunk stable (ESRGAN sec. 3.1)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.2)
                m.weight.data.mul_(0.1)
                nn.init.zeros_(m.bias)

    def forward(self, lr):
        features = self.head(lr)
        features = features + self.body(features)
        for factor, conv in zip(self.factors, self.upconvs):
            features = F.leaky_relu(conv(F.interpolate(features, scale_factor=factor, mode="nearest")), 0.2)
        return self.tail(features)


def relativistic_logits(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """C(x_r) - E[C(x_f)] and C(x_f) - E[C(x_r)] (relativistic average GAN, Jolicoeur-Martineau 2018)."""
    return real_logits - fake_logits.mean(), fake_logits - real_logits.mean()


@dataclass
class ESRGANOptions(SROptions):
    growth: int = option(32, interval="[1, inf)")  # channels added by each conv of a dense block


@register
class ESRGAN(SuperResolution):
    """ESRGAN: RRDB generator, relativistic average VGG-style discriminator, VGG conv5_4 perceptual loss."""

    name = "esrgan"
    Options = ESRGANOptions
    tiny = {"model": {"options": {"blocks": 1, "growth": 4, "scale": 2, "perceptual": "none"}}}
    preset = {
        "data": {"resolution": 128},
        "model": {"width": 64, "d_norm": "batch", "loss": "nonsaturating",
                  "options": {"blocks": 23, "growth": 32, "pixel_loss": "l1", "pixel_weight": 1e-2,
                              "perceptual": "vgg", "perceptual_layer": "conv5_4", "perceptual_weight": 1.0,
                              "perceptual_criterion": "l1", "adversarial_weight": 5e-3}},
        "train": {"batch_size": 16, "lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.9, "beta2": 0.99, "ema": 0.0,
                  "ema_start": 1},
    }

    def build_generator(self) -> nn.Module:
        o = self.options
        return RRDBNet(self.info.channels, self.config.model.width, o.blocks, o.growth, o.scale)

    def generator_adversarial(self, real_logits, fake_logits):
        real, fake = relativistic_logits(real_logits, fake_logits)
        return (F.binary_cross_entropy_with_logits(real, torch.zeros_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))) / 2

    def discriminator_adversarial(self, real_logits, fake_logits):
        real, fake = relativistic_logits(real_logits, fake_logits)
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))) / 2
