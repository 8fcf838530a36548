"""The runs folder as the UI sees it: the listed runs (the only folders it reads), their table row, curves and
sample grids over time. Run names from the page are looked up in the listing, never joined into paths."""

from __future__ import annotations

import csv
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ganforge.errors import GanforgeError

CHECKPOINT = Path("checkpoints") / "last.safetensors"
DEPTH = 2  # runs/NAME and runs/GROUP/NAME (e.g. tune trials)
SPEED = {"img_per_s", "lr_scale"}  # metrics.csv columns that are not losses: left out of the loss curves
STEP_FILE = re.compile(r"step_(\d+)\.(png|gif)$")


@dataclass
class Run:
    """A run folder under the runs root, named by its path relative to the root (with '/')."""

    name: str
    path: Path

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT


def list_runs(root: Path) -> dict[str, Run]:
    """name -> run for every folder under `root` (up to DEPTH levels) holding checkpoints/last.safetensors, newest
    first; symbolic links leading out of `root` are left out."""
    root = Path(root).resolve()
    found = []
    for depth in range(1, DEPTH + 1):
        for checkpoint in root.glob(f"{'/'.join(['*'] * depth)}/{CHECKPOINT.as_posix()}"):
            folder = checkpoint.parent.parent
            try:
                folder.resolve().relative_to(root)
            except ValueError:
                continue
            found.append((checkpoint.stat().st_mtime, Run(folder.relative_to(root).as_posix(), folder)))
    found.sort(key=lambda item: (-item[0], item[1].name))
    return {run.name: run for _, run in found}


def find_run(root: Path, name: str | None) -> Run:
    """The listed run called `name`; anything else (a path, '../..', a run that is gone) is refused."""
    if not name:
        raise GanforgeError("pick a run first")
    runs = list_runs(root)
    if name not in runs:
        raise GanforgeError(f"unknown run '{name}': pick one of the listed runs")
    return runs[name]


def read_table(path: Path) -> list[dict[str, float]]:
    """Rows of a metrics.csv / eval.csv with numeric values (empty cells left out); [] when there is none."""
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            values = {}
            for key, value in row.items():
                try:
                    values[key] = float(value)
                except (TypeError, ValueError):
                    continue
            rows.append(values)
    return rows


def _meta(run: Run) -> dict:
    from ganforge.training import checkpoint

    return checkpoint.read_meta(run.checkpoint)


COLUMNS = ["run", "family", "data", "step", "of", "scores", "updated"]


def table_row(run: Run) -> list:
    """The run's row of the runs table: family, data, step, latest evaluation scores and the date."""
    try:
        meta = _meta(run)
    except GanforgeError as error:
        return [run.name, "?", "?", None, None, f"unreadable: {error}", ""]
    config = meta["config"]
    evals = read_table(run.path / "eval.csv")
    scores = ", ".join(f"{key.removeprefix('eval/')} {value:.4g}" for key, value in (evals[-1] if evals else {}).items()
                       if key != "step" and math.isfinite(value))
    updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.checkpoint.stat().st_mtime))
    return [run.name, config["model"]["name"], config["data"]["source"], int(meta["step"]),
            int(config["train"]["steps"]), scores, updated]


def runs_table(root: Path) -> list[list]:
    """One row per listed run (COLUMNS)."""
    return [table_row(run) for run in list_runs(root).values()]


def describe(run: Run) -> str:
    """What `ganforge info` says about the run, as Markdown lines."""
    from ganforge.flags import family_lines
    from ganforge.families import get

    meta = _meta(run)
    config, data = meta["config"], meta["data"]
    model = config["model"]
    lines = [f"**{run.name}**",
             f"- model: {model['name']} (latent {model['latent_dim']}, width {model['width']}, loss {model['loss']})",
             f"- data: {data['name']}: {data['n']} items, {data['channels']} channel(s), "
             f"{config['data']['resolution']} px, {len(data['classes'])} classes",
             f"- progress: step {meta['step']} of {config['train']['steps']}, rollbacks {meta['rollbacks']}",
             "- checkpoints: " + ", ".join(p.stem for p in sorted(run.checkpoint.parent.glob("*.safetensors")))]
    if meta.get("best"):
        lines.append("- best: " + ", ".join(f"{k} {v}" for k, v in meta["best"].items()))
    try:
        lines += [f"- {line.strip()}" for line in family_lines(get(model["name"]))[:1]]
    except GanforgeError:
        pass
    return "\n".join(lines)


def curves(run: Run, table: str) -> dict[str, list[tuple[float, float]]]:
    """name -> [(step, value)] for every column of the run's `table`.csv (metrics or eval)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for row in read_table(run.path / f"{table}.csv"):
        step = row.get("step")
        if step is None:
            continue
        for key, value in row.items():
            if key != "step" and key not in SPEED and math.isfinite(value):
                series.setdefault(key, []).append((step, value))
    return series


def sample_grids(run: Run) -> list[tuple[int, Path]]:
    """(step, file) of the sample grids the run wrote (samples/step_N.png or .gif), by step."""
    found = []
    for path in (run.path / "samples").glob("step_*"):
        match = STEP_FILE.search(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)
