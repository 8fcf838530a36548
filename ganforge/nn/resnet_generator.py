"""ResNet generator (Johnson et al. 2016, as used by CycleGAN, Zhu et al. 2017) for any input size.

c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-3: reflection padding, two stride-2 downsamplings, residual
blocks, two x2 upsamplings. Inputs whose sides are not multiples of 4 are padded and the output cropped back.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ganforge.nn.layers import norm_layer, spectral
from ganforge.nn.unet import pad_to_multiple, up_layer


class ResidualBlock(nn.Module):
    """x + (reflect-pad, 3x3 conv, norm, ReLU, reflect-pad, 3x3 conv, norm)(x)."""

    def __init__(self, channels: int, norm: str, bias: bool):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), spectral(nn.Conv2d(channels, channels, 3, bias=bias), norm), norm_layer(norm, channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1), spectral(nn.Conv2d(channels, channels, 3, bias=bias), norm), norm_layer(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Image-to-image generator with `n_blocks` residual blocks at 1/4 resolution; keeps the input's spatial size."""

    stride = 4

    def __init__(self, in_channels: int, out_channels: int, n_blocks: int = 9, width: int = 64, norm: str = "instance",
                 upsample: str = "transpose"):
        super().__init__()
        bias = norm in ("none", "spectral", "instance")
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), spectral(nn.Conv2d(in_channels, width, 7, bias=bias), norm),
                                   norm_layer(norm, width), nn.ReLU(True)]
        for i in range(2):
            a, b = width * 2 ** i, width * 2 ** (i + 1)
            layers += [spectral(nn.Conv2d(a, b, 3, 2, 1, bias=bias), norm), norm_layer(norm, b), nn.ReLU(True)]
        layers += [ResidualBlock(width * 4, norm, bias) for _ in range(n_blocks)]
        for i in (2, 1):
            a, b = width * 2 ** i, width * 2 ** (i - 1)
            up = up_layer(a, b, upsample, bias)
            if isinstance(up, nn.ConvTranspose2d):
                up = nn.ConvTranspose2d(a, b, 3, 2, 1, output_padding=1, bias=bias)  # the paper's fractional stride
            layers += [up, norm_layer(norm, b), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, self.stride)
        return self.net(x)[..., :h, :w]
