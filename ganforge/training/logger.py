"""Run logging without accounts or servers: a metrics CSV and TensorBoard event files in the run folder."""

from __future__ import annotations

import csv
from pathlib import Path

import torch


class RunLogger:
    """Appends scalar rows to metrics.csv and TensorBoard; images go to TensorBoard too."""

    def __init__(self, run_dir: Path, resume_step: int | None = None, enabled: bool = True):
        self.run_dir = run_dir
        self.enabled = enabled
        self.fields: dict[str, list[str]] = {}
        self.writer = None
        if not enabled:
            return
        for path in run_dir.glob("*.csv"):
            if resume_step is not None:
                self._truncate(path, resume_step)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=resume_step)
        except ImportError:  # tensorboard is a dependency; a broken install should not stop training
            self.writer = None

    def _truncate(self, path: Path, step: int) -> None:
        """Drop rows written after `step` by a run that died before its next checkpoint."""
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows:
            return
        self.fields[path.stem] = list(rows[0].keys())
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, self.fields[path.stem])
            writer.writeheader()
            writer.writerows(r for r in rows if int(r["step"]) <= step)

    def scalars(self, step: int, values: dict[str, float], table: str = "metrics") -> None:
        """Append a row to `table`.csv (metrics.csv: losses and speed; eval.csv: scores) and to TensorBoard."""
        if not self.enabled:
            return
        row = {"step": step, **values}
        path = self.run_dir / f"{table}.csv"
        fields = self.fields.setdefault(table, list(row))
        added = [k for k in row if k not in fields]
        if added and path.exists():  # a value that starts later (e.g. a loss switched on mid-run): widen the table
            with path.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
            fields.extend(added)
            with path.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fields)
                writer.writeheader()
                writer.writerows(rows)
        elif added:
            fields.extend(added)
        new = not path.exists()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fields)
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
