"""Learning-rate schedules shared by families (their `lr_factor`)."""

from __future__ import annotations

import math


def tail_decay(step: int, total: int, start: float, shape: str = "linear", floor: float = 0.0) -> float:
    """Learning-rate factor at `step` (0-based, the step about to run) of `total`: 1 before step round(start x
    total), then falling linearly (or along a half cosine) to `floor` at step `total` - 1 and staying there (a
    resumed run with more steps than its schedule)."""
    begin = int(round(start * total))
    if step < begin or begin >= total:
        return 1.0
    progress = min(1.0, (step - begin + 1) / max(1, total - begin))
    fall = progress if shape == "linear" else 0.5 * (1.0 - math.cos(math.pi * progress))
    return 1.0 - (1.0 - floor) * fall
