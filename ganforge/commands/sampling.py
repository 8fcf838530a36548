"""Sampling commands: `ganforge sample` (any modality, in its formats) and `ganforge interpolate` (a latent walk as
a GIF or MP4)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ganforge.errors import GanforgeError

BATCH = 256  # samples generated at a time


def _load(run: Path, checkpoint: str, device: str):
    import ganforge

    return ganforge.load(run, checkpoint, device)


def sample(
    run: Path = typer.Argument(..., help="run folder or checkpoint file"),
    n: int = typer.Option(64, help="number of samples"),
    out: Optional[Path] = typer.Option(None, help="by the model's modality: images: grid.png/.jpg, a folder of PNGs, "
                                                  "file.npz; video: .gif, .mp4, a folder, .npz; audio: .wav, .png "
                                                  "(spectrograms), a folder, .npz; tokens: .txt, .npz (default: "
                                                  "samples.png, .gif, .wav or .txt)"),
    seed: int = typer.Option(0),
    klass: Optional[int] = typer.Option(None, "--class", help="class index for conditional models"),
    checkpoint: str = typer.Option("last", help="which checkpoint: last, best, step_000500..."),
    device: str = typer.Option("cpu", help="auto | cpu | cuda | cuda:N | mps"),
    truncation: Optional[float] = typer.Option(None, help="truncation psi for stylegan/biggan (1: none)"),
    zoom: int = typer.Option(1, help="enlarge grids, GIFs and MP4s this many times (nearest neighbour)"),
) -> None:
    """Generate samples from a trained run in a format of its modality (grid, folder, .npz, GIF, WAV, text...)."""
    from ganforge import media
    from ganforge.media.progress import track

    if n < 1:
        raise GanforgeError(f"--n must be at least 1, got {n}")
    model = _load(run, checkpoint, device)
    modality = model.family.capabilities.modality
    out = out or Path("samples" + media.PREVIEW[modality][0][0])
    media.check_format(out, modality)  # before generating: a wrong suffix should not cost the samples
    inputs = model.sample_inputs(n, seed, labels=klass, truncation=truncation)
    chunks = [model.generate({k: v[start:start + BATCH] for k, v in inputs.items()})
              for start in track(range(0, n, BATCH), "sample", enabled=n > BATCH)]
    written = media.save(media.concat(chunks), out, zoom=zoom, progress=n > BATCH)
    typer.echo(f"wrote {written} to {out}")


def interpolate(
    run: Path = typer.Argument(..., help="run folder or checkpoint file"),
    out: Path = typer.Option(Path("walk.gif"), help="animated .gif or .mp4 (also a folder of GIFs or .npz)"),
    n: int = typer.Option(8, help="walks shown side by side"),
    points: int = typer.Option(4, help="latent key points each walk loops through"),
    frames: int = typer.Option(16, help="frames between two key points"),
    seed: int = typer.Option(0),
    checkpoint: str = typer.Option("last"),
    device: str = typer.Option("cpu", help="auto | cpu | cuda | cuda:N | mps"),
    fps: float = typer.Option(12, help="frames per second"),
    zoom: int = typer.Option(1, help="enlarge the frames this many times (nearest neighbour)"),
) -> None:
    """Write a looping latent walk (spherical interpolation between random latents) as a GIF or MP4."""
    from ganforge import media
    from ganforge.generation import latent_walk

    if min(n, points, frames) < 1 or points < 2:
        raise GanforgeError("--n and --frames must be at least 1 and --points at least 2")
    if not fps > 0:
        raise GanforgeError(f"--fps must be positive, got {fps:g}")
    media.check_format(out, "video")
    model = _load(run, checkpoint, device)
    clips = latent_walk(model, n, points, frames, seed, fps, progress=True)
    written = media.save(clips, out, zoom=zoom, nrow=n)
    typer.echo(f"wrote {written} to {out}")


def register(app: typer.Typer) -> None:
    """Add `sample` and `interpolate` to the ganforge CLI."""
    app.command("sample")(sample)
    app.command("interpolate")(interpolate)
