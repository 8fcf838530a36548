"""The DCGAN networks (Radford et al. 2016), shared by the families that build on them: a transposed-convolution
generator from a latent vector and a strided-convolution discriminator, for any power-of-two size."""

from __future__ import annotations

import math

import torch.nn as nn

from ganforge.nn.layers import conv_block


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
