"""Noticing that a run went bad (NaN/inf, or losses and weights exploding while finite) and finding the checkpoint to
roll back to."""

from __future__ import annotations

import math
import statistics
from collections import deque
from pathlib import Path

import torch

from ganforge.errors import GanforgeError
from ganforge.training import checkpoint as ckpt

WINDOW = 50  # logged values the running median looks back over


class DivergenceGuard:
    """Flags a value (a logged loss, a network's weight norm) whose magnitude exceeds `factor` times the median of
    its recent history (floored at 1, so that losses near zero may move freely); `factor` 0 turns it off."""

    def __init__(self, factor: float):
        self.factor = factor
        self.history: dict[str, deque[float]] = {}

    def check(self, values: dict[str, float]) -> str | None:
        """Why `values` look diverged, else None (and they join the history). NaN/inf are left to the NaN check."""
        if not self.factor:
            return None
        finite = {k: abs(v) for k, v in values.items() if math.isfinite(v)}
        for key, value in finite.items():
            past = self.history.get(key)
            if past and value > self.factor * max(statistics.median(past), 1.0):
                return (f"{key} reached {value:.3g}, over {self.factor:g}x its recent median "
                        f"{statistics.median(past):.3g} (train.divergence)")
        for key, value in finite.items():
            self.history.setdefault(key, deque(maxlen=WINDOW)).append(value)
        return None


def weight_norms(modules: dict[str, torch.nn.Module]) -> dict[str, float]:
    """The L2 norm of each module's parameters together, as `weight_norm/NAME`."""
    norms = {}
    for name, module in modules.items():
        params = [p.detach().float().norm() for p in module.parameters()]
        if params:
            norms[f"weight_norm/{name}"] = float(torch.stack(params).norm())
    return norms


def all_finite(modules: list[torch.nn.Module]) -> torch.Tensor:
    """Whether every floating-point parameter and buffer of `modules` is finite (a bool tensor: no sync)."""
    checks = [torch.isfinite(t).all() for m in modules for t in m.state_dict().values() if t.is_floating_point()]
    return torch.stack(checks).all()


def newest_good_checkpoint(folder: Path, device: torch.device) -> tuple[Path, dict, dict, list[str]]:
    """The newest checkpoint in `folder` that loads, matches its hash and is finite (last, then step_N newest
    first): its path, tensors, metadata, and why newer candidates were skipped."""
    skipped = []
    for path in [folder / "last.safetensors", *sorted(folder.glob("step_*.safetensors"), reverse=True)]:
        try:
            tensors, meta = ckpt.load(path, device)
        except GanforgeError as error:
            skipped.append(str(error))
            continue
        return path, tensors, meta, skipped
    raise GanforgeError(f"no checkpoint in {folder} is fit to roll back to ({skipped[0] if skipped else 'none found'})")
