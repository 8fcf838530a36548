"""What `ganforge evaluate` does with files: read image sets (folders, .tar, .npz/.npy), score them with a progress
bar and a low-sample warning, report and save the scores, fit a feature extractor on a labelled folder."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ganforge.data.image_files import pixels_to_uint8
from ganforge.errors import GanforgeError
from ganforge.metrics.evaluate import evaluate_images, parse_metrics, resolve_extractor
from ganforge.metrics.extractors import adapt_channels, extraction_progress
from ganforge.metrics.images import ImageSet, load_images
from ganforge.media import from_uint8

def evaluate_sets(fake: torch.Tensor, real: torch.Tensor, metrics: str, extractor: str | None, batch_size: int,
              seed: int, **record) -> dict:
    """evaluate_images with a progress bar on stderr and a warning when FID's covariance is singular."""
    model = resolve_extractor(extractor, fake)
    n = min(len(fake), len(real))
    if "fid" in parse_metrics(metrics) and n <= model.num_features:
        print(f"warning: {n} images for {model.num_features}-dim {model.name} features: the covariance is "
              f"singular and FID unreliable; use more than {model.num_features} images", file=sys.stderr)
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal, transient=True) as progress:
        current = {"task": None, "left": 0}

        def report(done: int, total: int) -> None:
            if not current["left"]:  # a new image set (real, then generated; a cached real set reports nothing)
                current["task"] = progress.add_task(f"{model.name} features", total=total)
            progress.update(current["task"], completed=done)
            current["left"] = total - done

        with extraction_progress(report):
            return evaluate_images(fake, real, metrics, model, batch_size=batch_size, seed=seed, **record)


def load_set(source: Path, size: int | None = None, channels: int | None = None, limit: int | None = None
              ) -> ImageSet:
    """A folder/.tar (read by load_images) or an .npz/.npy array, at SIZE px with CHANNELS channels when given."""
    if source.suffix.lower() not in (".npz", ".npy"):
        return load_images(source, size=size, mode={None: None, 1: "L", 3: "RGB"}[channels], limit=limit)
    images = _read_array(source)
    if limit is not None and len(images) > limit:
        images = images[::len(images) // limit][:limit]  # every k-th image, as for folders
    images = from_uint8(images.permute(0, 3, 1, 2))
    images = adapt_channels(images, channels or images.shape[1])
    image_format = f"{source.suffix.lstrip('.').lower()}:uint8"
    if size is not None and images.shape[-2:] != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bicubic", antialias=True,
                               align_corners=False).clamp(-1, 1)
        image_format += f"->bicubic-antialias@{size}"
    return ImageSet(images.contiguous(), torch.full((len(images),), -1), [], image_format)


def _read_array(path: Path) -> torch.Tensor:
    """uint8 images (N,H,W,C) from an .npy, or the 'images' array of an .npz as `ganforge sample` writes it
    (other pixel value ranges are converted as for training data)."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                if "images" not in loaded.files:
                    raise GanforgeError(f"{path}: no 'images' array (found {', '.join(loaded.files) or 'none'})")
                loaded = loaded["images"]
    except (OSError, ValueError, EOFError) as error:
        raise GanforgeError(f"{path}: cannot read the array ({error})") from None
    array = loaded[..., None] if loaded.ndim == 3 else loaded
    if array.ndim != 4 or array.shape[-1] not in (1, 3) or len(array) < 1:
        raise GanforgeError(f"{path}: expected images shaped (N, H, W) or (N, H, W, 1|3) as ganforge sample "
                            f"writes them, got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(pixels_to_uint8(array, str(path))))


def check_writable(path: Path) -> None:
    """Fail before the work when PATH cannot be written: a folder, or below a regular file or read-only folder."""
    if path.is_dir():
        raise GanforgeError(f"--json {path} is a folder; give a file name")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise GanforgeError(f"--json {path}: cannot write there ({parent} is "
                            f"{'not a folder' if not parent.is_dir() else 'read-only'})")


def result_to_json(result: dict) -> dict:
    """Scores, their names (FID only through Inception) and the record as plain JSON values."""
    record = result["record"]
    scores = {k: v for k, v in result.items() if k != "record"}
    names = {k: record.score_name(k) for k in scores if record.score_name(k) != k}
    return {"scores": scores, "names": names, "record": record.to_dict(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S")}


def report_scores(result: dict, console: Console, paths: list[Path]) -> None:
    record = result["record"]
    table = Table(title="ganforge evaluate")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key == "record":
            continue
        if isinstance(value, dict):
            for sub, item in value.items():
                table.add_row(f"{key}.{sub}", _format(item))
        else:
            table.add_row(record.score_name(key), _format(value))
    console.print(table)
    console.print("record: " + ", ".join(f"{k}={v}" for k, v in record.to_dict().items()), markup=False)
    payload = json.dumps(result_to_json(result), indent=1)
    for path in paths:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(payload + "\n")
        except OSError as error:
            raise GanforgeError(f"cannot write {path}: {error.strerror or error}") from None
        console.print(f"wrote {path}", markup=False)


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
    if isinstance(value, list):
        return "; ".join(map(str, value)) or "-"
    return str(value)


def fit_folder(folder: Path, out: Path, epochs: int, seed: int, console: Console) -> None:
    from ganforge.metrics.fit import fit_extractor

    data = load_images(folder)
    if not data.classes or len(data.classes) < 2:
        raise GanforgeError(f"{folder} needs one sub-folder per class (at least 2) to fit an extractor")
    held = torch.arange(len(data.images)) % 10 == 9  # deterministic hold-out: every 10th image
    report = fit_extractor(data.images[~held], data.labels[~held], data.classes, out, epochs=epochs, seed=seed,
                           holdout=(data.images[held], data.labels[held]) if held.any() else None,
                           notes={"data": str(folder), "holdout": "every 10th image (sorted by path)"},
                           log=console.print)
    console.print(f"wrote {Path(out).with_suffix('.safetensors')} (holdout accuracy "
                  f"{report.get('holdout_accuracy', float('nan')):.3f})")

