"""Run logging without accounts or servers: a metrics CSV and TensorBoard event files in the run folder, and the
progress shown while training."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path


class RunLogger:
    """Appends scalar rows to metrics.csv and TensorBoard; images go to TensorBoard too."""

    def __init__(self, run_dir: Path, resume_step: int | None = None, enabled: bool = True):
        self.run_dir = run_dir
        self.enabled = enabled
        self.fields: dict[str, list[str]] = {}
        self.writer = None
        if enabled:
            self._open(resume_step)

    def _open(self, step: int | None) -> None:
        """Start logging; after `step` (None: a new run) when continuing: what was logged later is dropped."""
        for leftover in self.run_dir.glob(".*.csv.tmp"):  # from a rewrite killed before its rename
            leftover.unlink(missing_ok=True)
        if step is not None:
            for path in self.run_dir.glob("*.csv"):
                self._truncate(path, step)
        try:
            from torch.utils.tensorboard import SummaryWriter

            # events at `step` itself came before its checkpoint and stay; later ones are purged
            self.writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=None if step is None else step + 1)
        except ImportError:  # tensorboard is a dependency; a broken install should not stop training
            self.writer = None

    def rewind(self, step: int) -> None:
        """Forget what was logged after `step` (training rolled back to that step's checkpoint)."""
        if self.enabled:
            self.close()
            self._open(step)

    def _truncate(self, path: Path, step: int) -> None:
        """Drop rows written after `step` by a run that died before its next checkpoint."""
        fields, rows = _read_table(path)
        if not fields:
            return
        self.fields[path.stem] = fields
        _write_table(path, fields, [r for r in rows if int(r["step"]) <= step])

    def scalars(self, step: int, values: dict[str, float], table: str = "metrics") -> None:
        """Append a row to `table`.csv (metrics.csv: losses and speed; eval.csv: scores) and to TensorBoard."""
        if not self.enabled:
            return
        row = {"step": step, **values}
        path = self.run_dir / f"{table}.csv"
        fields = self.fields.setdefault(table, list(row))
        added = [k for k in row if k not in fields]
        if added and path.exists():  # a value that starts later (e.g. a loss switched on mid-run): widen the table
            fields.extend(added)
            _write_table(path, fields, _read_table(path)[1])
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

    def samples(self, step: int, tag: str, samples) -> None:
        """Typed samples (ganforge.media) in TensorBoard's tab for their modality: a grid image, an animated GIF
        grid (written here: add_video needs moviepy), the clips joined by silence (mono), or text lines."""
        if not self.enabled or self.writer is None:
            return
        from ganforge.media import audio, images, to_uint8, tokens, video

        if samples.modality == "image":
            self.writer.add_image(tag, images.grid(to_uint8(samples.tensor))[0], step)
        elif samples.modality == "video":
            from tensorboard.compat.proto.summary_pb2 import Summary

            frames, _ = video.grid_frames(samples)
            picture = Summary.Image(height=frames.shape[-2], width=frames.shape[-1], colorspace=frames.shape[-3],
                                    encoded_image_string=video.gif_bytes(frames, samples.fps))
            self.writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=picture)]), step)
        elif samples.modality == "audio":
            self.writer.add_audio(tag, audio.joined(samples).mean(0, keepdim=True), step, samples.sample_rate)
        else:
            self.writer.add_text(tag, "\n".join("    " + line for line in tokens.lines(samples)), step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV table, without a last line cut short by a kill."""
    text = path.read_text()
    if text and not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def _write_table(path: Path, fields: list[str], rows: list[dict]) -> None:
    """Replace a CSV table in one step (temp file, then rename): a kill mid-way must not lose the logged rows."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def describe(values: dict[str, float]) -> str:
    """One progress line: the losses, then the speed (two significant digits below 10 img/s, not a rounded 0)."""
    parts = [f"{k} {v:.3f}" for k, v in values.items() if k not in ("img_per_s", "lr_scale") and math.isfinite(v)]
    rate = values.get("img_per_s", 0.0)
    return " ".join(parts + [f"{rate:.0f} img/s" if rate >= 10 else f"{rate:.2g} img/s"])


def progress_display(quiet: bool):
    """A rich progress bar, live only on a terminal (piped output gets plain lines from the trainer instead)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(quiet=quiet)
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=console,
                    disable=quiet or not console.is_terminal)
