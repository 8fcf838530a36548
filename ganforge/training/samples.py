"""Sample grids and latent walks written as image files."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from ganforge.errors import GanforgeError


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None) -> torch.Tensor:
    """Save images in [-1, 1] as one PNG grid; returns the grid tensor in [0, 1]."""
    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    grid = make_grid(images.detach().float().cpu().clamp(-1, 1), nrow=nrow, padding=2, normalize=True,
                     value_range=(-1, 1))
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, str(path))
    except OSError as error:
        raise GanforgeError(f"cannot write {path}: {error.strerror or error}") from None
    return grid


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float (N, C, H, W) to uint8 (N, H, W, C)."""
    return images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 1)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent vectors a and b (rows) at fractions t (Shoemake 1985)."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    t = t.view(-1, 1)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b
