"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2 with a cubic polynomial kernel, over subsets."""
from __future__ import annotations

import torch
from torch import Tensor


def polynomial_mmd(x: Tensor, y: Tensor, degree: int = 3, gamma: float | None = None, coef: float = 1.0) -> Tensor:
    """Unbiased MMD^2 between samples x (m,d) and y (n,d) with k(a, b) = (gamma a.b + coef)^degree."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    k_xx = (x @ x.T * gamma + coef) ** degree
    k_yy = (y @ y.T * gamma + coef) ** degree
    k_xy = (x @ y.T * gamma + coef) ** degree
    m, n = len(x), len(y)
    within_x = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    within_y = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return within_x + within_y - 2 * k_xy.mean()


def kernel_inception_distance(real: Tensor, fake: Tensor, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """Mean and std of polynomial MMD^2 over random subsets (size capped by the smaller sample), in float64."""
    size = min(subset_size, len(real), len(fake))
    generator = torch.Generator().manual_seed(seed)
    real, fake = real.double(), fake.double()
    values = torch.stack([
        polynomial_mmd(real[torch.randperm(len(real), generator=generator)[:size]],
                       fake[torch.randperm(len(fake), generator=generator)[:size]])
        for _ in range(subsets)
    ])
    return values.mean().item(), (values.std().item() if subsets > 1 else 0.0)
