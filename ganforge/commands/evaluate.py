"""`ganforge evaluate`: score a run's samples or two image sets (folders, .tar, .npz), or fit a feature extractor
on a labelled folder. Heavy imports happen inside, so the CLI starts without torch."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from ganforge.errors import GanforgeError

FIT = "fit-extractor"


def evaluate_command(
    targets: list[str] = typer.Argument(None, help="RUN folder; or REAL FAKE (folders, .tar or .npz, like "
                                        "pytorch-fid); or 'fit-extractor DIR' (sub-folders = classes)."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated: fid,kid,is,pr,dc,kl,diversity,"
                                          "mode_collapse,ssim,ms_ssim,psnr (default fid,kid,pr); audio also silence,nn,"
                                          "accuracy (default fid,is,mode_collapse,silence,nn,accuracy)."),
    n: int = typer.Option(10000, "--n", help="Samples drawn from RUN; at most this many images (evenly spaced) "
                          "read per folder or .npz."),
    extractor: Optional[str] = typer.Option(None, "--extractor", help="digits, cifar10, inception, or a weights "
                                            "path; default: digits for grey images, cifar10 for RGB."),
    real: Optional[Path] = typer.Option(None, "--real", help="Folder, .tar or .npz of real images."),
    fake: Optional[Path] = typer.Option(None, "--fake", help="Folder, .tar or .npz of generated images (e.g. "
                                        "from ganforge sample --out x.npz)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the scores and record here."),
    references: Optional[Path] = typer.Option(None, "--references", help="Text runs: held-out sentences (a .txt, "
                                              "one a line) for BLEU-2..5, Self-BLEU-2..5 and NLL."),
    out: Optional[Path] = typer.Option(None, "--out", help="fit-extractor: where to write NAME.safetensors/.json."),
    epochs: int = typer.Option(10, "--epochs", help="fit-extractor: training epochs."),
    seed: int = typer.Option(0, "--seed", help="Sampling and metric seed (stored in the record)."),
    batch_size: int = typer.Option(250, "--batch-size", help="Images per feature-extraction batch."),
) -> None:
    """Evaluate a run or two image sets (FID, KID, IS, precision/recall, ...), or fit a feature extractor."""
    from rich.console import Console

    from ganforge.metrics.audio import evaluate_audio_files, evaluate_audio_run, fit_audio_folder, is_audio_source
    from ganforge.metrics.files import check_writable, evaluate_sets, fit_folder, load_set, report_scores

    targets = list(targets or [])
    console = Console()
    if targets[:1] == [FIT]:
        if len(targets) != 2 or out is None:
            raise GanforgeError("usage: ganforge evaluate fit-extractor DIR --out PATH")
        if is_audio_source(Path(targets[1])):  # a labelled WAV folder: an audio classifier
            report = fit_audio_folder(Path(targets[1]), out, epochs, seed, console.print)
            console.print(f"wrote {Path(out).with_suffix('.safetensors')} (holdout accuracy "
                          f"{report.get('holdout_accuracy', float('nan')):.3f})")
        else:
            fit_folder(Path(targets[1]), out, epochs, seed, console)
        return
    if n < 1:
        raise GanforgeError(f"--n must be at least 1, got {n}")
    if json_path is not None:
        check_writable(json_path)
    pair = (real, fake) if real is not None and fake is not None else tuple(map(Path, targets))
    if len(pair) == 2 and any(is_audio_source(p) for p in pair):
        report_scores(evaluate_audio_files(*pair, metrics, extractor, n, batch_size, seed), console,
                      [json_path] if json_path else [])
        return
    metrics = metrics or "fid,kid,pr"
    if real is not None or fake is not None or len(targets) == 2:
        if (real is None) != (fake is None) or (real is not None and targets):
            raise GanforgeError("folder evaluation needs REAL FAKE, or both --real and --fake, and no RUN")
        real, fake = (real, fake) if real is not None else map(Path, targets)
        real_set = load_set(real, limit=n)
        fake_set = load_set(fake, size=real_set.images.shape[-1], channels=real_set.images.shape[1], limit=n)
        result = evaluate_sets(fake_set.images, real_set.images, metrics, extractor, batch_size, seed,
                           reference_split=f"folder {real.name}",
                           image_format=f"real {real_set.image_format}; fake {fake_set.image_format}")
        report_scores(result, console, [json_path] if json_path else [])
        return
    if len(targets) != 1:
        raise GanforgeError("usage: ganforge evaluate RUN | REAL FAKE | --real REAL --fake FAKE | "
                            "fit-extractor DIR --out PATH")
    run = Path(targets[0])
    import ganforge  # the run loader lives in the core package; imported here so metrics do not depend on it

    model = ganforge.load(run)
    if model.family.capabilities.modality == "audio":
        result = evaluate_audio_run(model, n, metrics, extractor, batch_size, seed)
        report_scores(result, console, [run / "eval" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"]
                      + ([json_path] if json_path else []))
        return
    if model.family.capabilities.modality == "tokens":
        _evaluate_text(model, references, n, seed, run, json_path, console)
        return
    if model.family.capabilities.modality == "video":
        result = _evaluate_clips(model, n, extractor, batch_size, seed)
        report_scores(result, console, [run / "eval" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"]
                      + ([json_path] if json_path else []))
        return
    samples = model.sample(n, seed=seed).tensor
    result = evaluate_sets(samples, model.real_images(), metrics, extractor, batch_size, seed,
                       reference_split="train", image_format="tensor")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    report_scores(result, console, [run / "eval" / f"{stamp}.json"] + ([json_path] if json_path else []))


def _evaluate_clips(model, n: int, extractor: Optional[str], batch_size: int, seed: int) -> dict:
    """A video run's N clips against N of its training clips: per-frame FD, motion statistics and, for moving
    digits with a fixed count per clip, identity consistency (ganforge.metrics.video)."""
    from ganforge.metrics.video import evaluate_clips

    facts = model.family.info.facts
    low, high = facts.get("digits_per_clip", (0, 1))
    real = type(model.family).load_data(model.config).as_float(n)
    fake = model.sample(len(real), seed=seed).tensor
    return evaluate_clips(fake, real, extractor, facts.get("digit_size") if low == high else None, low,
                          seed=seed, batch_size=batch_size)


def _evaluate_text(model, references: Optional[Path], n: int, seed: int, run: Path, json_path, console) -> None:
    """A text run's BLEU-2..5 / Self-BLEU-2..5 against --references FILE.txt, NLL, unique and copied shares (and
    NLL-oracle for oracle runs), as a table and eval/<time>.json."""
    import json

    from rich.table import Table

    from ganforge.metrics.text import evaluate_text_run

    result = evaluate_text_run(model, references, n, seed)
    table = Table(title="ganforge evaluate (text)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result["scores"].items():
        table.add_row(key, f"{value:.4f}")
    console.print(table)
    console.print("record: " + ", ".join(f"{k}={v}" for k, v in result["record"].items()), markup=False)
    for path in [run / "eval" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"] + ([json_path] if json_path else []):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
        console.print(f"wrote {path}", markup=False)


def register(app: typer.Typer) -> None:
    """Add `evaluate` to the ganforge CLI."""
    app.command("evaluate", context_settings={"allow_extra_args": False})(evaluate_command)
