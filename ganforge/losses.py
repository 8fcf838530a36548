"""Adversarial losses and penalties as plain functions of discriminator outputs (logits)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError

from ganforge.config import LOSSES, PENALTIES  # noqa: F401  (the choices live with the config)


def check_loss(kind: str) -> None:
    if kind not in LOSSES:
        raise GanforgeError(f"model.loss must be one of {', '.join(LOSSES)}; got '{kind}'")


def discriminator_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's (critic's) loss for real and fake logits, averaged over the batch."""
    if kind in ("nonsaturating", "minimax"):  # -log D(x) - log(1 - D(G(z))), Goodfellow et al. 2014
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "hinge":  # Lim & Ye 2017; Miyato et al. 2018
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    if kind == "wasserstein":  # Arjovsky et al. 2017: the critic maximises E[D(x)] - E[D(G(z))]
        return fake.mean() - real.mean()
    if kind == "least-squares":  # Mao et al. 2017, a=0, b=1
        return 0.5 * ((real - 1.0).square().mean() + fake.square().mean())
    check_loss(kind)
    raise AssertionError(kind)


def generator_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss for the logits the discriminator gave its samples."""
    if kind == "nonsaturating":  # -log D(G(z))
        return F.softplus(-fake).mean()
    if kind == "minimax":  # log(1 - D(G(z))), the original saturating objective
        return -F.softplus(fake).mean()
    if kind in ("hinge", "wasserstein"):
        return -fake.mean()
    if kind == "least-squares":
        return 0.5 * (fake - 1.0).square().mean()
    check_loss(kind)
    raise AssertionError(kind)


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017, eq. 3): E[(||grad D(x_hat)||_2 - 1)^2], one mixing weight per sample.

    Computed in float32 outside autocast so that mixed precision cannot under/overflow the double backward.
    """
    real, fake = real.detach().float(), fake.detach().float()
    alpha = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device)
    mixed = (real + alpha * (fake - real)).requires_grad_(True)
    with torch.autocast(real.device.type, enabled=False):
        scores = critic(mixed).float()
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1.0).square().mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018, eq. 9 without gamma/2): E[||grad D(x)||^2] on real data.

    `real` must have had requires_grad set before `real_logits` were computed.
    """
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real, create_graph=True)
    return grad.float().flatten(1).square().sum(1).mean()
