"""Walks through latent space: spherical interpolation between latent vectors."""

from __future__ import annotations

import torch


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent vectors a and b (rows) at fractions t (Shoemake 1985)."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    t = t.view(-1, 1)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def walk_inputs(keys: list[dict[str, torch.Tensor]], frames: int):
    """Generator inputs along a closed loop through `keys` (inputs of n samples each), `frames` steps per leg:
    latent vectors (float rows) are slerped, everything else (labels...) is taken from the leg's start."""
    n = next(iter(keys[0].values())).shape[0]
    for k, a in enumerate(keys):
        b = keys[(k + 1) % len(keys)]
        for t in torch.linspace(0, 1, frames + 1)[:-1]:
            yield {name: slerp(a[name], b[name], t.expand(n)) if a[name].is_floating_point() and a[name].ndim == 2
                   else a[name] for name in a}
