"""Differentiable Augmentation (Zhao et al. 2020): the same random colour, translation and cutout applied to
real and generated images before the discriminator, with gradients flowing through to the generator.

Every noise-to-image family has it as the model option `diffaugment="color,translation,cutout"`
(ganforge.families.kinds.noise).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError


def brightness(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)


def saturation(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(1, keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean


def contrast(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size, filling with zeros (the paper's default 1/8)."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    rows = (rows + dy + 1).clamp(0, h + 1).expand(n, h, w)
    cols = (cols + dx + 1).clamp(0, w + 1).expand(n, h, w)
    padded = F.pad(x, [1, 1, 1, 1])
    index = (rows * (w + 2) + cols).view(n, 1, h * w).expand(-1, x.shape[1], -1)
    return padded.flatten(2).gather(2, index).view_as(x)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a random square of `ratio` times the image size in each image (the paper's default 1/2)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((rows - cy + ch // 2) >= 0) & ((rows - cy + ch // 2) < ch) & \
             ((cols - cx + cw // 2) >= 0) & ((cols - cx + cw // 2) < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES = {"color": (brightness, saturation, contrast), "translation": (translation,), "cutout": (cutout,)}


def parse_policy(policy: str) -> list[str]:
    """'color,translation,cutout' -> its parts, rejecting unknown ones."""
    parts = [p.strip() for p in policy.split(",") if p.strip()]
    for part in parts:
        if part not in POLICIES:
            raise GanforgeError(f"model.options.diffaugment: unknown augmentation '{part}' "
                                f"(expected a comma-separated subset of {', '.join(POLICIES)})")
    return parts


def diff_augment(x: torch.Tensor, policy: str | list[str]) -> torch.Tensor:
    """Apply the augmentations of `policy` in order, each with fresh per-image randomness; differentiable in x."""
    for part in parse_policy(policy) if isinstance(policy, str) else policy:
        for transform in POLICIES[part]:
            x = transform(x)
    return x
