"""DCGAN (Radford et al. 2016): transposed-convolution generator and strided-convolution discriminator."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch.nn as nn

from ganforge.data.diffaugment import DiffAugmentMixin
from ganforge.errors import GanforgeError
from ganforge.families import register
from ganforge.families.base import NoiseGAN
from ganforge.nn import conv_block, init_dcgan_weights
from ganforge.nn.layers import check_norm


def widths(resolution: int, width: int, cap: int = 8) -> list[int]:
    """Channels per 4x4..resolution/2 stage: width * 8, 4, 2, 1 (capped), widest at 4x4."""
    stages = int(math.log2(resolution)) - 2
    return [width * min(cap, 2 ** (stages - 1 - i)) for i in range(stages)]


def upsample(in_ch: int, out_ch: int, mode: str) -> nn.Module:
    """Double the spatial size: a 4x4 stride-2 transposed conv, or nearest resize then 3x3 conv (no checkerboard)."""
    if mode == "transpose":
        return nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=False)
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False))


class Generator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, resolution: int, width: int, norm: str, mode: str):
        super().__init__()
        chans = widths(resolution, width)
        layers = [conv_block(nn.ConvTranspose2d(latent_dim, chans[0], 4, 1, 0, bias=False), norm, chans[0], nn.ReLU(True))]
        for a, b in zip(chans, chans[1:]):
            layers.append(conv_block(upsample(a, b, mode), norm, b, nn.ReLU(True)))
        last = upsample(chans[-1], channels, mode)
        if mode == "transpose":
            last.bias = nn.Parameter(last.weight.new_zeros(channels))
        layers += [last, nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.latent_dim = latent_dim

    def forward(self, z):
        return self.net(z.view(z.shape[0], self.latent_dim, 1, 1))


class Discriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, width: int, norm: str):
        super().__init__()
        chans = widths(resolution, width)[::-1]
        first = nn.Conv2d(channels, chans[0], 4, 2, 1)
        layers = [conv_block(first, "spectral" if norm == "spectral" else "none", chans[0], nn.LeakyReLU(0.2, True))]
        for a, b in zip(chans, chans[1:]):
            layers.append(conv_block(nn.Conv2d(a, b, 4, 2, 1, bias=False), norm, b, nn.LeakyReLU(0.2, True)))
        layers.append(conv_block(nn.Conv2d(chans[-1], 1, 4, 1, 0), "spectral" if norm == "spectral" else "none", 1, nn.Identity()))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x).flatten()


@dataclass
class DCGANOptions:
    upsample: str = "transpose"  # transpose | resize (nearest resize + conv, avoids checkerboard artefacts)
    diffaugment: str = ""  # DiffAugment policy for small data, e.g. "color,translation,cutout"


@register
class DCGAN(DiffAugmentMixin, NoiseGAN):
    """Unconditional DCGAN for any power-of-two resolution from 8 to 256."""

    name = "dcgan"
    Options = DCGANOptions
    # 10,000 steps: the default demo's ~4 CPU-minutes on digits (docs/results.md); channels-last: the NHWC layout
    # that oneDNN and tensor cores prefer
    preset = {"train": {"channels_last": True, "steps": 10000}}

    def __init__(self, config, info):
        super().__init__(config, info)
        model = config.model
        if not 8 <= info.resolution <= 256:
            raise GanforgeError(f"data.resolution: dcgan supports 8 to 256 pixels, got {info.resolution}")
        if self.options.upsample not in ("transpose", "resize"):
            raise GanforgeError(f"model.options.upsample must be 'transpose' or 'resize', got '{self.options.upsample}'")
        check_norm(model.g_norm, "model.g_norm")
        check_norm(model.d_norm, "model.d_norm")
        self.generator = Generator(model.latent_dim, info.channels, info.resolution, model.width, model.g_norm,
                                   self.options.upsample)
        self.discriminator = Discriminator(info.channels, info.resolution, model.width, model.d_norm)
        init_dcgan_weights(self)
