"""The SRResNet generator and SRGAN's VGG-style discriminator (Ledig et al. 2017), and the upsampling stages
shared with ESRGAN: residual blocks, then PixelShuffle x2 (or one x3) stages."""

from __future__ import annotations

import math

import torch.nn as nn

from ganforge.nn.layers import conv_block, norm_layer


def upsample_steps(scale: int) -> list[int]:
    """The factor of each upsampling stage: 2s for powers of two, a single 3 for scale 3."""
    return [3] if scale == 3 else [2] * int(math.log2(scale))


class ResidualBlock(nn.Module):
    def __init__(self, width: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), norm_layer(norm, width), nn.PReLU(width),
                                  nn.Conv2d(width, width, 3, 1, 1), norm_layer(norm, width))

    def forward(self, x):
        return x + self.body(x)


class SRResNet(nn.Module):
    """The SRGAN generator: 9x9 head, residual blocks with a long skip, PixelShuffle upsampling, 9x9 tail."""

    def __init__(self, channels: int, width: int, blocks: int, scale: int, norm: str):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, 1, 4), nn.PReLU(width))
        self.body = nn.Sequential(*[ResidualBlock(width, norm) for _ in range(blocks)],
                                  nn.Conv2d(width, width, 3, 1, 1), norm_layer(norm, width))
        ups = []
        for factor in upsample_steps(scale):
            ups += [nn.Conv2d(width, width * factor**2, 3, 1, 1), nn.PixelShuffle(factor), nn.PReLU(width)]
        self.upsample = nn.Sequential(*ups)
        self.tail = nn.Conv2d(width, channels, 9, 1, 4)

    def forward(self, lr):
        features = self.head(lr)
        return self.tail(self.upsample(features + self.body(features)))


class BicubicResidual(nn.Module):
    """`network(lr)` added to the bicubic upscale of `lr`; the network's last conv starts at zero, so training
    starts from the bicubic baseline (global residual learning, Kim et al. 2016, VDSR)."""

    def __init__(self, network: nn.Module, scale: int):
        super().__init__()
        self.network, self.scale = network, scale
        last = [m for m in network.modules() if isinstance(m, nn.Conv2d)][-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, lr):
        from ganforge.data.degrade import bicubic_upscale

        return self.network(lr) + bicubic_upscale(lr, self.scale)


class VGGDiscriminator(nn.Module):
    """SRGAN's VGG-style discriminator; adaptive pooling before the dense layers accepts any patch size."""

    def __init__(self, channels: int, width: int, norm: str):
        super().__init__()
        layers, cin = [], channels
        for i, mult in enumerate((1, 1, 2, 2, 4, 4, 8, 8)):
            cout, stride = width * mult, 1 + i % 2
            conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=i == 0 or norm != "batch")
            layers.append(conv_block(conv, "none" if i == 0 and norm != "spectral" else norm, cout,
                                     nn.LeakyReLU(0.2, True)))
            cin = cout
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(cin, cin * 2), nn.LeakyReLU(0.2, True), nn.Linear(cin * 2, 1))

    def forward(self, x):
        return self.head(self.features(x)).flatten()
