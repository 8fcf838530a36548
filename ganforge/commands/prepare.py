"""`ganforge prepare SRC OUT --resolution 256`: a data set resized once into .tar shards for fast training. Heavy
imports happen inside, so the CLI starts without torch."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def prepare_command(
    source: str = typer.Argument(..., help="a folder of images, a .npy/.npz array, .tar shards or a named data set"),
    out: Path = typer.Argument(..., help="the folder to write the .tar shards (and classes.txt) into"),
    resolution: int = typer.Option(256, help="side of the square images written (resize shorter side, centre crop)"),
    channels: Optional[int] = typer.Option(None, help="1 (grey) or 3 (RGB); by default from the data"),
    transparent: bool = typer.Option(False, help="keep the alpha channel (RGBA PNGs)"),
    shard_size: int = typer.Option(1000, help="images per .tar shard"),
    workers: int = typer.Option(2, help="worker processes decoding, resizing and encoding"),
    limit: Optional[int] = typer.Option(None, help="write at most this many images"),
) -> None:
    """Resize a data set once into WebDataset-style .tar shards of PNGs (labels as .cls members), as stylegan2-ada's
    dataset_tool does; train on them with --data OUT (streamed when larger than data.memory_budget_mb)."""
    from rich.progress import Progress

    from ganforge.data.prepare import prepare_shards

    with Progress(transient=True) as bar:
        task = bar.add_task("prepare", total=None)
        summary = prepare_shards(source, out, resolution, channels, transparent, shard_size, workers, limit,
                                 progress=lambda done, total: bar.update(task, completed=done, total=total))
    skipped = (f"; skipped {summary['skipped']} unreadable (first: {summary['first_error']})"
               if summary["skipped"] else "")
    classes = f", {summary['classes']} classes" if summary["classes"] else ""
    typer.echo(f"wrote {summary['images']} images at {resolution} px in {summary['shards']} shard(s) to {out}"
               f"{classes}{skipped}; train with --data {out}")


def register(app: typer.Typer) -> None:
    """Add `prepare` to the ganforge CLI."""
    app.command("prepare")(prepare_command)
