"""`ganforge evaluate`: score a run's samples or two image sets (folders, .tar, .npz), or fit a feature extractor
on a labelled folder."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ganforge.data.image_files import to_uint8
from ganforge.errors import GanforgeError
from ganforge.metrics.evaluate import evaluate_images, parse_metrics, resolve_extractor
from ganforge.metrics.extractors import adapt_channels, extraction_progress
from ganforge.metrics.images import ImageSet, load_images

FIT = "fit-extractor"


def evaluate_command(
    targets: list[str] = typer.Argument(None, help="RUN folder; or REAL FAKE (folders, .tar or .npz, like "
                                        "pytorch-fid); or 'fit-extractor DIR' (sub-folders = classes)."),
    metrics: str = typer.Option("fid,kid,pr", "--metrics", help="Comma-separated: fid,kid,is,pr,dc,kl,diversity,"
                                "mode_collapse,ssim,ms_ssim,psnr."),
    n: int = typer.Option(10000, "--n", help="Samples drawn from RUN; at most this many images (evenly spaced) "
                          "read per folder or .npz."),
    extractor: Optional[str] = typer.Option(None, "--extractor", help="digits, cifar10, inception, or a weights "
                                            "path; default: digits for grey images, cifar10 for RGB."),
    real: Optional[Path] = typer.Option(None, "--real", help="Folder, .tar or .npz of real images."),
    fake: Optional[Path] = typer.Option(None, "--fake", help="Folder, .tar or .npz of generated images (e.g. "
                                        "from ganforge sample --out x.npz)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the scores and record here."),
    out: Optional[Path] = typer.Option(None, "--out", help="fit-extractor: where to write NAME.safetensors/.json."),
    epochs: int = typer.Option(10, "--epochs", help="fit-extractor: training epochs."),
    seed: int = typer.Option(0, "--seed", help="Sampling and metric seed (stored in the record)."),
    batch_size: int = typer.Option(250, "--batch-size", help="Images per feature-extraction batch."),
) -> None:
    """Evaluate a run or two image sets (FID, KID, IS, precision/recall, ...), or fit a feature extractor."""
    targets = list(targets or [])
    console = Console()
    if targets[:1] == [FIT]:
        if len(targets) != 2 or out is None:
            raise GanforgeError("usage: ganforge evaluate fit-extractor DIR --out PATH")
        _fit(Path(targets[1]), out, epochs, seed, console)
        return
    if n < 1:
        raise GanforgeError(f"--n must be at least 1, got {n}")
    if json_path is not None:
        _check_writable(json_path)
    if real is not None or fake is not None or len(targets) == 2:
        if (real is None) != (fake is None) or (real is not None and targets):
            raise GanforgeError("folder evaluation needs REAL FAKE, or both --real and --fake, and no RUN")
        real, fake = (real, fake) if real is not None else map(Path, targets)
        real_set = _load_set(real, limit=n)
        fake_set = _load_set(fake, size=real_set.images.shape[-1], channels=real_set.images.shape[1], limit=n)
        result = _evaluate(fake_set.images, real_set.images, metrics, extractor, batch_size, seed,
                           reference_split=f"folder {real.name}",
                           image_format=f"real {real_set.image_format}; fake {fake_set.image_format}")
        _report(result, console, [json_path] if json_path else [])
        return
    if len(targets) != 1:
        raise GanforgeError("usage: ganforge evaluate RUN | REAL FAKE | --real REAL --fake FAKE | "
                            "fit-extractor DIR --out PATH")
    run = Path(targets[0])
    import ganforge  # the run loader lives in the core package; imported here so metrics do not depend on it

    model = ganforge.load(run)
    samples = model.sample(n, seed=seed).tensor
    result = _evaluate(samples, model.real_images(), metrics, extractor, batch_size, seed,
                       reference_split="train", image_format="tensor")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    _report(result, console, [run / "eval" / f"{stamp}.json"] + ([json_path] if json_path else []))


def _evaluate(fake: torch.Tensor, real: torch.Tensor, metrics: str, extractor: Optional[str], batch_size: int,
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


def _load_set(source: Path, size: int | None = None, channels: int | None = None, limit: int | None = None
              ) -> ImageSet:
    """A folder/.tar (read by load_images) or an .npz/.npy array, at SIZE px with CHANNELS channels when given."""
    if source.suffix.lower() not in (".npz", ".npy"):
        return load_images(source, size=size, mode={None: None, 1: "L", 3: "RGB"}[channels], limit=limit)
    images = _read_array(source)
    if limit is not None and len(images) > limit:
        images = images[::len(images) // limit][:limit]  # every k-th image, as for folders
    images = images.permute(0, 3, 1, 2).float().div(127.5).sub(1)
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
    return torch.from_numpy(np.ascontiguousarray(to_uint8(array, str(path))))


def _check_writable(path: Path) -> None:
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


def _report(result: dict, console: Console, paths: list[Path]) -> None:
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


def _fit(folder: Path, out: Path, epochs: int, seed: int, console: Console) -> None:
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

