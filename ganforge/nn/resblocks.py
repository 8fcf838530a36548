"""Residual generator/discriminator blocks (SNGAN, Miyato et al. 2018; BigGAN, Brock et al. 2019), class-
conditional batch norm, and the projection discriminator head (Miyato & Koyama 2018)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.nn.layers import spectral


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose gain and bias are linear functions of a condition vector (class embedding + latent chunk).

    With `cond_dim` 0 it is a plain affine batch norm.
    """

    def __init__(self, channels: int, cond_dim: int = 0, norm: str = "spectral"):
        super().__init__()
        self.cond_dim = cond_dim
        self.bn = nn.BatchNorm2d(channels, affine=cond_dim == 0)
        if cond_dim:
            self.gain = spectral(nn.Linear(cond_dim, channels, bias=False), norm)
            self.bias = spectral(nn.Linear(cond_dim, channels, bias=False), norm)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        out = self.bn(x)
        if not self.cond_dim:
            return out
        gain = 1 + self.gain(cond)[:, :, None, None]
        return out * gain + self.bias(cond)[:, :, None, None]


class GeneratorBlock(nn.Module):
    """BN-ReLU-up-conv-BN-ReLU-conv with an upsampled 1x1 shortcut; BN conditional when `cond_dim` > 0."""

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int = 0, norm: str = "none"):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(in_channels, cond_dim, norm)
        self.conv1 = spectral(nn.Conv2d(in_channels, out_channels, 3, 1, 1), norm)
        self.bn2 = ConditionalBatchNorm2d(out_channels, cond_dim, norm)
        self.conv2 = spectral(nn.Conv2d(out_channels, out_channels, 3, 1, 1), norm)
        self.shortcut = spectral(nn.Conv2d(in_channels, out_channels, 1), norm)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DiscriminatorBlock(nn.Module):
    """(ReLU)-conv-ReLU-conv-avgpool with a 1x1 shortcut; the first block skips the leading ReLU (SNGAN)."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool = True, first: bool = False,
                 norm: str = "spectral"):
        super().__init__()
        self.conv1 = spectral(nn.Conv2d(in_channels, out_channels, 3, 1, 1), norm)
        self.conv2 = spectral(nn.Conv2d(out_channels, out_channels, 3, 1, 1), norm)
        self.shortcut = (spectral(nn.Conv2d(in_channels, out_channels, 1), norm)
                         if in_channels != out_channels or downsample else nn.Identity())
        self.downsample, self.first = downsample, first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        skip = x
        if self.first:  # pool before the 1x1 conv on the image (SNGAN's optimised first block)
            skip = self.shortcut(F.avg_pool2d(skip, 2) if self.downsample else skip)
        else:
            skip = self.shortcut(skip)
            skip = F.avg_pool2d(skip, 2) if self.downsample else skip
        return (F.avg_pool2d(h, 2) if self.downsample else h) + skip


class ProjectionHead(nn.Module):
    """Logit = linear(h) + <embed(y), h> (Miyato & Koyama 2018, eq. 3); unconditional when n_classes is 0."""

    def __init__(self, features: int, n_classes: int = 0, norm: str = "spectral"):
        super().__init__()
        self.linear = spectral(nn.Linear(features, 1), norm)
        self.embed = spectral(nn.Embedding(n_classes, features), norm) if n_classes else None

    def forward(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        out = self.linear(h).flatten()
        if self.embed is not None and labels is not None:
            out = out + (self.embed(labels) * h).sum(1)
        return out


def orthogonal_regularization(module: nn.Module) -> torch.Tensor:
    """BigGAN's off-diagonal orthogonality penalty sum ||W W^T * (1 - I)||_F^2 over conv and linear weights
    (Brock et al. 2019, eq. 3); embeddings and 1-D parameters are left out, as in the paper."""
    total = None
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            if not w.requires_grad:
                continue
            w = w.flatten(1)
            gram = w @ w.t()
            term = (gram * (1 - torch.eye(gram.shape[0], device=w.device, dtype=w.dtype))).square().sum()
            total = term if total is None else total + term
    if total is None:
        return torch.zeros(())
    return total
