"""Self-attention over feature-map positions (SAGAN, Zhang et al. 2019), as used by BigGAN."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.nn.layers import spectral


class SelfAttention(nn.Module):
    """x + gamma * attention(x); query/key at C/8 channels, value at C/2, keys and values max-pooled 2x2.

    The attention is PyTorch's fused `scaled_dot_product_attention` (scale 1, as in SAGAN): its flash / memory-efficient
    kernels never hold the (HW x HW/4) matrix, which at 256 px and batch 64 is 4.3 G entries. Those kernels have no
    double backward, so a layer that a gradient penalty or R1 differentiates twice (`twice_differentiable`) computes
    the same product explicitly.
    """

    def __init__(self, channels: int, norm: str = "spectral", twice_differentiable: bool = False):
        super().__init__()
        self.twice_differentiable = twice_differentiable
        self.query = spectral(nn.Conv2d(channels, max(1, channels // 8), 1, bias=False), norm)
        self.key = spectral(nn.Conv2d(channels, max(1, channels // 8), 1, bias=False), norm)
        self.value = spectral(nn.Conv2d(channels, max(1, channels // 2), 1, bias=False), norm)
        self.out = spectral(nn.Conv2d(max(1, channels // 2), channels, 1, bias=False), norm)
        self.gamma = nn.Parameter(torch.zeros(()))  # starts as the identity, as in the paper

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # n, hw, c/8
        pool = (lambda t: F.max_pool2d(t, 2)) if min(h, w) >= 2 else (lambda t: t)
        k = pool(self.key(x)).flatten(2).transpose(1, 2)  # n, hw/4, c/8
        v = pool(self.value(x)).flatten(2).transpose(1, 2)  # n, hw/4, c/2
        if self.twice_differentiable:
            out = torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v  # n, hw, c/2 (the matrix is n, hw, hw/4)
        else:
            pad = v.shape[-1] - q.shape[-1]  # zero channels leave q k^T unchanged and give the fused (flash) kernels
            q, k = F.pad(q, (0, pad)), F.pad(k, (0, pad))  # the equal head sizes they require (C/8 -> C/2)
            out = F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.contiguous().unsqueeze(1),
                                                 scale=1.0).squeeze(1)
        out = out.transpose(1, 2).reshape(n, -1, h, w)
        return x + self.gamma * self.out(out)
