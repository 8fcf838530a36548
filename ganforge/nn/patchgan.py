"""PatchGAN discriminator (Isola et al. 2017): a fully convolutional critic giving one logit per image patch.

Works on any input size; `depth` strided layers set the patch (receptive field): depth 3 -> 70x70, the paper's default.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ganforge.nn.layers import norm_layer, spectral

KERNEL = 4
PADDING = 1


def layer_strides(depth: int) -> list[int]:
    """Strides of the convolutions: `depth` stride-2 layers, then two stride-1 layers (the last gives logits)."""
    return [2] * depth + [1, 1]


def receptive_field(depth: int) -> int:
    """Side in pixels of the input patch that one output logit sees (70 for depth 3)."""
    field = 1
    for stride in reversed(layer_strides(depth)):
        field = (field - 1) * stride + KERNEL
    return field


def output_size(size: int, depth: int) -> int:
    """Side of the logit map for an input side `size` (standard convolution arithmetic)."""
    for stride in layer_strides(depth):
        size = (size + 2 * PADDING - KERNEL) // stride + 1
    return size


def min_input_size(depth: int) -> int:
    """The smallest input side that still yields at least one logit."""
    size = 1
    while output_size(size, depth) < 1:
        size += 1
    return size


class PatchDiscriminator(nn.Module):
    """C64-C128-C256-C512 style critic: 4x4 convs, LeakyReLU(0.2), no norm on the first layer, logits per patch."""

    def __init__(self, in_channels: int, width: int = 64, depth: int = 3, norm: str = "batch", max_width: int = 512):
        super().__init__()
        if depth < 1:
            raise ValueError(f"PatchDiscriminator depth must be at least 1, got {depth}")
        self.depth = depth
        sn = "spectral" if norm == "spectral" else "none"
        strides = layer_strides(depth)
        chans = [in_channels] + [min(width * 2 ** i, max_width) for i in range(depth + 1)]
        layers: list[nn.Module] = []
        for i, stride in enumerate(strides[:-1]):
            conv = nn.Conv2d(chans[i], chans[i + 1], KERNEL, stride, PADDING, bias=(i == 0 or norm in ("none", "spectral")))
            layers.append(spectral(conv, norm if i > 0 else sn))
            if i > 0:
                layers.append(norm_layer(norm, chans[i + 1]))
            layers.append(nn.LeakyReLU(0.2, True))
        layers.append(spectral(nn.Conv2d(chans[-1], 1, KERNEL, strides[-1], PADDING), sn))
        self.net = nn.Sequential(*layers)

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits shaped (N, 1, h, w), one per overlapping patch."""
        return self.net(x)
