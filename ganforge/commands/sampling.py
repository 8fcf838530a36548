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
    temperature: Optional[float] = typer.Option(None, help="text models: sampling temperature, above 0 (1: as "
                                                "trained; lower: likelier, less varied text)"),
    zoom: int = typer.Option(1, help="enlarge grids, GIFs and MP4s this many times (nearest neighbour)"),
    frames: Optional[int] = typer.Option(None, help="video models: frames per clip (default: the training length; "
                                         "longer clips continue the motion)"),
    seeds: Optional[str] = typer.Option(None, help="one sample per seed, e.g. 600-605 or 1,5,9, written to the --out "
                                        "folder as seedNNNN.png (.gif/.wav/.txt): each equals --n 1 --seed NNNN"),
    per_class: Optional[int] = typer.Option(None, "--per-class", help="conditional models: this many samples of every "
                                            "class, written to --out/<class name>/ (an ImageFolder-style data set)"),
    caption: Optional[list[str]] = typer.Option(None, help="text-to-image models: the caption of the samples (repeat "
                                                "the flag for several: sample i gets caption i mod their count); "
                                                "unknown words are read as <unk> with a warning"),
    caption_to: Optional[str] = typer.Option(None, "--caption-to", help="text-to-image models: interpolate from "
                                             "--caption to this caption over the --n samples (one noise)"),
    latents: Optional[Path] = typer.Option(None, help="a latent file that `ganforge project` wrote (.npy, one latent "
                                           "per row): one sample per latent, instead of --n samples from --seed"),
) -> None:
    """Generate samples from a trained run in a format of its modality (grid, folder, .npz, GIF, WAV, text...)."""
    from ganforge import media
    from ganforge.media.progress import track

    if n < 1:
        raise GanforgeError(f"--n must be at least 1, got {n}")
    if frames is not None and (seeds is not None or per_class is not None):
        raise GanforgeError("--frames does not combine with --seeds or --per-class")
    if seeds is not None and per_class is not None:
        raise GanforgeError("--seeds and --per-class do not combine: give one")
    if (caption or caption_to) and (seeds is not None or per_class is not None):
        raise GanforgeError("--caption does not combine with --seeds or --per-class")
    if latents is not None and (seeds is not None or per_class is not None or truncation is not None):
        raise GanforgeError("--latents does not combine with --seeds, --per-class or --truncation")
    model = _load(run, checkpoint, device)
    modality = model.family.capabilities.modality
    if seeds is not None or per_class is not None:
        if out is None or out.suffix:
            raise GanforgeError(f"--seeds and --per-class write one file per sample: --out must be a folder, got {out}")
        if seeds is not None:
            written = _by_seed(model, parse_seeds(seeds), out, klass, truncation, temperature)
        else:
            written = _per_class(model, per_class, out, seed, truncation)
        typer.echo(f"wrote {written} to {out}")
        return
    out = out or Path("samples" + media.PREVIEW[modality][0][0])
    media.check_format(out, modality)  # before generating: a wrong suffix should not cost the samples
    inputs = model.sample_inputs(n, seed, labels=klass, truncation=truncation)
    if latents is not None:
        inputs, n = _from_latents(model, latents, klass)
    if frames is not None:
        inputs = _with_frames(model, inputs, frames)
    if caption or caption_to:
        inputs = _captioned(model, inputs, caption, caption_to)
    inputs = with_temperature(model, inputs, temperature)
    chunks = [model.generate({k: v[start:start + BATCH] for k, v in inputs.items()})
              for start in track(range(0, n, BATCH), "sample", enabled=n > BATCH)]
    written = media.save(media.concat(chunks), out, zoom=zoom, progress=n > BATCH)
    typer.echo(f"wrote {written} to {out}")


def _from_latents(model, path: Path, klass) -> tuple[dict, int]:
    """Generator inputs from a latent file of `ganforge project`, and their count."""
    from ganforge.projection import latent_file_inputs

    inputs = latent_file_inputs(model, path, klass)
    return inputs, len(next(iter(inputs.values())))


def _captioned(model, inputs: dict, captions: list[str] | None, towards: str | None) -> dict:
    """Generator inputs with the user's captions (and caption interpolation), for models that declare them."""
    if not model.family.capabilities.captioned:
        raise GanforgeError(f"--caption: model {model.config.model.name} is not text-conditioned")
    if not captions:
        raise GanforgeError("--caption-to needs --caption (the caption to start from)")
    return model.family.caption_inputs(inputs, captions, towards)


def with_temperature(model, inputs: dict, temperature: float | None) -> dict:
    """`inputs` with one sampling temperature per sample, for families that declare one."""
    if temperature is None:
        return inputs
    if not model.family.capabilities.temperature:
        raise GanforgeError(f"--temperature: model {model.config.model.name} has no sampling temperature")
    if not temperature > 0:
        raise GanforgeError(f"--temperature must be above 0, got {temperature:g}")
    import torch

    n = next(iter(inputs.values())).shape[0]
    return inputs | {"temperature": torch.full((n,), float(temperature))}


def parse_seeds(text: str) -> list[int]:
    """'600-605' or '1,5,9' (or both, '1,3-5') as a list of seeds."""
    seeds = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, dash, last = part.partition("-")
        try:
            low, high = int(first), int(last if dash else first)
        except ValueError:
            raise GanforgeError(f"--seeds: expected e.g. 600-605 or 1,5,9, got '{text}'") from None
        if low < 0 or high < low:
            raise GanforgeError(f"--seeds: '{part}' is not a range of non-negative seeds")
        seeds += range(low, high + 1)
    if not seeds:
        raise GanforgeError(f"--seeds: no seed in '{text}'")
    return seeds


def _with_frames(model, inputs: dict, frames: int) -> dict:
    """Generator inputs asking for clips of `frames` frames, for video models whose clips can vary in length."""
    import torch

    if model.family.capabilities.modality != "video" or "frames" not in inputs:
        raise GanforgeError(f"--frames: model {model.config.model.name} does not make clips of a chosen length")
    if not 1 <= frames <= 10000:
        raise GanforgeError(f"--frames must be 1 to 10000, got {frames}")
    return inputs | {"frames": torch.full_like(inputs["frames"], frames)}


def _by_seed(model, seeds: list[int], out: Path, klass, truncation, temperature=None) -> str:
    """seedNNNN.<preview suffix> for each seed: exactly what `--n 1 --seed NNNN` draws."""
    from ganforge import media
    from ganforge.media.progress import track

    suffix = media.PREVIEW[model.family.capabilities.modality][0][0]
    for seed in track(seeds, "sample", enabled=len(seeds) > 16):
        inputs = with_temperature(model, model.sample_inputs(1, seed, labels=klass, truncation=truncation), temperature)
        media.save(model.generate(inputs), out / f"seed{seed:04d}{suffix}")
    return f"{len(seeds)} files (one per seed)"


def _per_class(model, count: int, out: Path, seed: int, truncation) -> str:
    """OUT/<class name>/NNNNN.<suffix>: `count` samples of every class (class k drawn with seed + k)."""
    from ganforge import media

    if not model.family.capabilities.conditional:
        raise GanforgeError(f"--per-class: model {model.config.model.name} is unconditional (it has no classes)")
    if count < 1:
        raise GanforgeError(f"--per-class must be at least 1, got {count}")
    for index, name in enumerate(model.classes):
        folder = out / (str(name).replace("/", "_").replace("\\", "_").strip(".") or f"class{index}")
        media.save(model.sample(count, seed + index, labels=index, truncation=truncation), folder)
    return f"{count} samples of each of {len(model.classes)} classes"


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
