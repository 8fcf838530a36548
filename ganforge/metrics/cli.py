"""`ganforge evaluate`: score a run's samples, two image folders, or fit a feature extractor on a labelled folder."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import torch
import typer
from rich.console import Console
from rich.table import Table

from ganforge.errors import GanforgeError
from ganforge.metrics.evaluate import evaluate_images
from ganforge.metrics.images import load_images

FIT = "fit-extractor"


def evaluate_command(
    targets: list[str] = typer.Argument(None, help="RUN folder, or 'fit-extractor DIR' (sub-folders = classes)."),
    metrics: str = typer.Option("fid,kid,pr", "--metrics", help="Comma-separated: fid,kid,is,pr,dc,kl,diversity,"
                                "mode_collapse,ssim,ms_ssim,psnr."),
    n: int = typer.Option(10000, "--n", help="Samples drawn from RUN; at most this many images (evenly spaced) "
                          "read per folder."),
    extractor: Optional[str] = typer.Option(None, "--extractor", help="digits, cifar10, inception, or a weights "
                                            "path; default: digits for grey images, cifar10 for RGB."),
    real: Optional[Path] = typer.Option(None, "--real", help="Folder (or .tar) of real images."),
    fake: Optional[Path] = typer.Option(None, "--fake", help="Folder (or .tar) of generated images."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the scores and record here."),
    out: Optional[Path] = typer.Option(None, "--out", help="fit-extractor: where to write NAME.safetensors/.json."),
    epochs: int = typer.Option(10, "--epochs", help="fit-extractor: training epochs."),
    seed: int = typer.Option(0, "--seed", help="Sampling and metric seed (stored in the record)."),
    batch_size: int = typer.Option(250, "--batch-size", help="Images per feature-extraction batch."),
) -> None:
    """Evaluate a run or two image folders (FID, KID, IS, precision/recall, ...), or fit a feature extractor."""
    targets = list(targets or [])
    console = Console()
    if targets[:1] == [FIT]:
        if len(targets) != 2 or out is None:
            raise GanforgeError("usage: ganforge evaluate fit-extractor DIR --out PATH")
        _fit(Path(targets[1]), out, epochs, seed, console)
        return
    if real is not None or fake is not None:
        if real is None or fake is None or targets:
            raise GanforgeError("folder evaluation needs both --real DIR and --fake DIR and no RUN")
        real_set = load_images(real, limit=n)
        fake_set = load_images(fake, size=real_set.images.shape[-1], mode="L" if real_set.images.shape[1] == 1
                               else "RGB", limit=n)
        result = evaluate_images(fake_set.images, real_set.images, metrics, extractor, batch_size=batch_size,
                                 seed=seed, reference_split=f"folder {real.name}",
                                 image_format=f"real {real_set.image_format}; fake {fake_set.image_format}")
        _report(result, console, [json_path] if json_path else [])
        return
    if len(targets) != 1:
        raise GanforgeError("usage: ganforge evaluate RUN | --real DIR --fake DIR | fit-extractor DIR --out PATH")
    run = Path(targets[0])
    import ganforge  # the run loader lives in the core package; imported here so metrics do not depend on it

    model = ganforge.load(run)
    samples = model.sample(n, seed=seed)
    result = evaluate_images(samples, model.real_images(), metrics, extractor, batch_size=batch_size, seed=seed,
                             reference_split="train", image_format="tensor")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    _report(result, console, [run / "eval" / f"{stamp}.json"] + ([json_path] if json_path else []))


def result_to_json(result: dict) -> dict:
    """Scores and record as plain JSON values."""
    scores = {k: v for k, v in result.items() if k != "record"}
    return {"scores": scores, "record": result["record"].to_dict(), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _report(result: dict, console: Console, paths: list[Path]) -> None:
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
            table.add_row(key, _format(value))
    console.print(table)
    record = result["record"].to_dict()
    console.print("record: " + ", ".join(f"{k}={v}" for k, v in record.items()))
    payload = json.dumps(result_to_json(result), indent=1)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(payload + "\n")
        console.print(f"wrote {path}")


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

