"""Exponential moving average of the generator's weights (used for all sampling), and its norm statistics."""

from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn as nn


class EMA:
    """A frozen copy of `module` whose parameters track an exponential moving average of the live ones."""

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, source: nn.Module, steps_averaged: int) -> None:
        """Blend in the live weights; buffers are copied. `steps_averaged` < 0 copies the weights instead.

        The decay warms up as min(decay, (1 + k) / (10 + k)) over the k steps averaged so far, so the average
        is not stuck near the random initialisation for the first thousands of steps.
        """
        k = max(steps_averaged, -1)
        decay = 0.0 if k < 0 else min(self.decay, (1.0 + k) / (10.0 + k))
        ours = list(self.module.parameters())
        theirs = [p.detach() for p in source.parameters()]
        torch._foreach_lerp_(ours, theirs, 1.0 - decay)
        buffers = list(self.module.buffers())
        if buffers:  # one fused copy instead of a kernel per buffer (batch-norm statistics, noise maps...)
            torch._foreach_copy_(buffers, list(source.buffers()))


@torch.no_grad()
def refresh_norm_stats(module: nn.Module, make_inputs: Callable[[int], None], batches: int = 8) -> None:
    """Recompute batch-norm running statistics of `module` (e.g. the EMA generator) for its own weights.

    The live generator's running statistics belong to its own weights, not the averaged ones; BigGAN calls the
    fix "standing statistics". `make_inputs(i)` runs the i-th forward pass.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    module.eval()  # only the norms use batch statistics: other modules (spectral norm, dropout) must not update
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the passes
        m.train()
    for i in range(batches):
        make_inputs(i)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
        m.eval()
