"""Evaluation while training: score samples against the training data every `train.eval_every` steps, write the
scores with their evaluation record, and say when the first metric reached its best."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

import torch

HIGHER_IS_BETTER = ("is", "precision", "recall", "density", "coverage", "pr", "dc")


class PeriodicEvaluation:
    """The run's evaluator (real statistics computed once) and its JSON records in RUN/eval/."""

    def __init__(self, train, data, run_dir: Path):
        from ganforge.metrics import Evaluator

        self.evaluator = Evaluator(data.as_float(), train.eval_metrics, n=train.eval_n,
                                   extractor=train.eval_extractor, seed=train.seed)
        self.metric = train.eval_metrics.split(",")[0].strip()
        self.folder = run_dir / "eval"

    def __call__(self, step: int, sample: Callable[[int], torch.Tensor], best: dict) -> tuple[dict, dict | None]:
        """(scores at `step`, the new best {metric, value, step} when the first metric beat `best`, else None)."""
        scores = self.evaluator(sample)
        self.folder.mkdir(exist_ok=True)
        record = getattr(self.evaluator.record, "__dict__", {})
        (self.folder / f"step_{step:06d}.json").write_text(
            json.dumps({"step": step, "scores": scores, "record": record}, indent=1, default=str))
        value = scores.get(self.metric)
        if value is None or not math.isfinite(value):
            return scores, None
        previous = best.get("value")
        higher = self.metric in HIGHER_IS_BETTER
        if previous is None or (value > previous if higher else value < previous):
            return scores, {"metric": self.metric, "value": value, "step": step}
        return scores, None
