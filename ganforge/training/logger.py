"""Run logging without accounts or servers: a metrics CSV and TensorBoard event files in the run folder."""

from __future__ import annotations

import csv
from pathlib import Path

import torch


class RunLogger:
    """Appends scalar rows to metrics.csv and TensorBoard; images go to TensorBoard too."""

    def __init__(self, run_dir: Path, resume_step: int | None = None, enabled: bool = True):
        self.path = run_dir / "metrics.csv"
        self.enabled = enabled
        self.fields: list[str] | None = None
        self.writer = None
        if not enabled:
            return
        if resume_step is not None and self.path.exists():
            self._truncate(resume_step)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=resume_step)
        except ImportError:  # tensorboard is a dependency; a broken install should not stop training
            self.writer = None

    def _truncate(self, step: int) -> None:
        """Drop rows written after `step` by a run that died before its next checkpoint."""
        with self.path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows:
            return
        self.fields = list(rows[0].keys())
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, self.fields)
            writer.writeheader()
            writer.writerows(r for r in rows if int(r["step"]) <= step)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"step": step, **values}
        new = not self.path.exists()
        if self.fields is None:
            self.fields = list(row)
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, self.fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def image(self, step: int, tag: str, grid: torch.Tensor) -> None:
        if self.enabled and self.writer is not None:
            self.writer.add_image(tag, grid, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
