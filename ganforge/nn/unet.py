"""U-Net generator (Ronneberger et al. 2015, as used by pix2pix, Isola et al. 2017) for any input size.

`depth` stride-2 encoder stages with skip connections to mirrored decoder stages; dropout in the innermost decoder
stages. Inputs whose sides are not multiples of 2**depth are reflect-padded and the output cropped back.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.nn.layers import norm_layer, spectral


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (reflect where possible, else replicate) the bottom/right of `x` to a multiple of `multiple`."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def up_layer(in_ch: int, out_ch: int, mode: str, bias: bool) -> nn.Module:
    """x2 upsampling: a 4x4 stride-2 transposed conv, or nearest resize then 3x3 conv (no checkerboard)."""
    if mode == "transpose":
        return nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=bias)
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=bias))


class UNetGenerator(nn.Module):
    """Encoder C64-C128-C256-C512-..., decoder mirrored with skips, tanh output (or raw); keeps the input's size."""

    def __init__(self, in_channels: int, out_channels: int, depth: int = 8, width: int = 64, norm: str = "batch",
                 dropout: float = 0.5, upsample: str = "transpose", max_width: int = 512, tanh: bool = True):
        super().__init__()
        if depth < 1:
            raise ValueError(f"UNetGenerator depth must be at least 1, got {depth}")
        self.depth = depth
        self.stride = 2 ** depth
        chans = [min(width * 2 ** i, max_width) for i in range(depth)]
        bias = norm in ("none", "spectral")
        self.down = nn.ModuleList()
        previous = in_channels
        for i, ch in enumerate(chans):
            innermost_or_first = i == 0 or i == depth - 1  # no norm on the first layer or at the 1x1 bottleneck
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, True)]
            layers.append(spectral(nn.Conv2d(previous, ch, 4, 2, 1, bias=bias or innermost_or_first), norm))
            if not innermost_or_first:
                layers.append(norm_layer(norm, ch))
            self.down.append(nn.Sequential(*layers))
            previous = ch
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):
            in_ch = chans[i] if i == depth - 1 else chans[i] * 2
            last = i == 0
            out_ch = out_channels if last else chans[i - 1]
            layers = [nn.ReLU(True), up_layer(in_ch, out_ch, upsample, bias=bias or last)]
            if last:
                if tanh:  # tanh=False: raw outputs (e.g. a residual and a mask logit)
                    layers.append(nn.Tanh())
            else:
                layers.append(norm_layer(norm, out_ch))
                if dropout > 0 and max(1, depth - 4) <= i <= depth - 2:  # pix2pix: the 3 stages below the bottleneck
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, self.stride)
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()
        for layer in self.up:
            x = layer(x)
            if skips:
                x = torch.cat([x, skips.pop()], 1)
        return x[..., :h, :w]
