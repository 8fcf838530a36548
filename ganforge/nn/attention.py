"""Self-attention over feature-map positions (SAGAN, Zhang et al. 2019), as used by BigGAN."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.nn.layers import spectral


class SelfAttention(nn.Module):
    """x + gamma * attention(x); query/key at C/8 channels, value at C/2, keys and values max-pooled 2x2."""

    def __init__(self, channels: int, norm: str = "spectral"):
        super().__init__()
        self.query = spectral(nn.Conv2d(channels, max(1, channels // 8), 1, bias=False), norm)
        self.key = spectral(nn.Conv2d(channels, max(1, channels // 8), 1, bias=False), norm)
        self.value = spectral(nn.Conv2d(channels, max(1, channels // 2), 1, bias=False), norm)
        self.out = spectral(nn.Conv2d(max(1, channels // 2), channels, 1, bias=False), norm)
        self.gamma = nn.Parameter(torch.zeros(()))  # starts as the identity, as in the paper

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2)  # n, c/8, hw
        pool = (lambda t: F.max_pool2d(t, 2)) if min(h, w) >= 2 else (lambda t: t)
        k = pool(self.key(x)).flatten(2)
        v = pool(self.value(x)).flatten(2)
        attention = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # n, hw, hw/4
        out = (v @ attention.transpose(1, 2)).view(n, -1, h, w)
        return x + self.gamma * self.out(out)
