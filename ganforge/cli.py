"""The `ganforge` command line: thin wrappers that turn flags into configs and call the Python API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from ganforge.errors import GanforgeError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train, sample, evaluate and use GANs on your own data.")
console = Console()

# CLI flag -> config field; flags map one-to-one onto config fields
TRAIN_FLAGS = {
    "data": "data.source", "resolution": "data.resolution", "channels": "data.channels", "data_root": "data.root",
    "flip": "data.flip", "limit": "data.limit",
    "model": "model.name", "latent_dim": "model.latent_dim", "width": "model.width", "g_norm": "model.g_norm",
    "d_norm": "model.d_norm", "loss": "model.loss", "penalty": "model.penalty", "penalty_weight": "model.penalty_weight",
    "steps": "train.steps", "batch_size": "train.batch_size", "lr_g": "train.lr_g", "lr_d": "train.lr_d",
    "beta1": "train.beta1", "beta2": "train.beta2", "n_critic": "train.n_critic", "ema": "train.ema",
    "amp": "train.amp", "seed": "train.seed", "device": "train.device", "sample_every": "train.sample_every",
    "checkpoint_every": "train.checkpoint_every", "log_every": "train.log_every",
    "scale": "model.options.scale",
    "out": "out", "name": "name",
}


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """--opt key=value pairs (values parsed as YAML scalars) into model.options overrides."""
    import yaml

    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise GanforgeError(f"--opt expects key=value, got '{pair}'")
        parsed[f"model.options.{key.strip()}"] = yaml.safe_load(value)
    return parsed


@app.command()
def train(
    data: Optional[str] = typer.Option(None, help="digits | mnist | fashion-mnist | cifar10 | celeba | FOLDER | FILE.npy/.npz"),
    model: Optional[str] = typer.Option(None, help="GAN family, e.g. dcgan"),
    steps: Optional[int] = typer.Option(None, help="total training steps of the run (also when resuming)"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    resolution: Optional[int] = typer.Option(None, help="image size, a power of two"),
    channels: Optional[int] = typer.Option(None, help="1 (grey) or 3 (RGB); default: from the data"),
    seed: Optional[int] = typer.Option(None),
    out: Optional[str] = typer.Option(None, help="folder holding run folders (default runs/)"),
    name: Optional[str] = typer.Option(None, help="run folder name (default model-data-time)"),
    resume: Optional[Path] = typer.Option(None, help="continue the run in this folder"),
    config: Optional[Path] = typer.Option(None, help="YAML config file; flags override it"),
    data_root: Optional[str] = typer.Option(None, "--data-root", help="download/cache folder for torchvision data sets"),
    flip: Optional[bool] = typer.Option(None, "--flip/--no-flip", help="random horizontal flips"),
    limit: Optional[int] = typer.Option(None, help="use at most this many images"),
    latent_dim: Optional[int] = typer.Option(None, "--latent-dim"),
    width: Optional[int] = typer.Option(None, help="network width (channels)"),
    g_norm: Optional[str] = typer.Option(None, "--g-norm", help="batch | instance | none | spectral"),
    d_norm: Optional[str] = typer.Option(None, "--d-norm", help="batch | instance | none | spectral"),
    loss: Optional[str] = typer.Option(None, help="nonsaturating | minimax | hinge | wasserstein | least-squares"),
    penalty: Optional[str] = typer.Option(None, help="none | gp | r1"),
    penalty_weight: Optional[float] = typer.Option(None, "--penalty-weight"),
    lr_g: Optional[float] = typer.Option(None, "--lr-g"),
    lr_d: Optional[float] = typer.Option(None, "--lr-d"),
    beta1: Optional[float] = typer.Option(None),
    beta2: Optional[float] = typer.Option(None),
    n_critic: Optional[int] = typer.Option(None, "--n-critic"),
    ema: Optional[float] = typer.Option(None, help="EMA decay of G (0: off)"),
    amp: Optional[bool] = typer.Option(None, "--amp/--no-amp", help="mixed precision where the device supports it"),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda | cuda:N | mps"),
    sample_every: Optional[int] = typer.Option(None, "--sample-every"),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every"),
    log_every: Optional[int] = typer.Option(None, "--log-every"),
    scale: Optional[int] = typer.Option(None, help="upscaling factor of super-resolution models (2 or 4)"),
    opt: list[str] = typer.Option([], help="family option key=value (repeatable)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the fully resolved config and exit"),
    quiet: bool = typer.Option(False, help="no progress output"),
) -> None:
    """Train a GAN; writes config, checkpoints, sample grids, TensorBoard logs and metrics.csv to the run folder."""
    import yaml

    from ganforge import api

    given = locals()
    overrides = {field: given[flag] for flag, field in TRAIN_FLAGS.items() if given[flag] is not None}
    overrides |= parse_options(opt)
    if resume is not None:
        if config is not None:
            raise GanforgeError("--resume uses the run's saved config; drop --config")
        resolved = api.resume_config(resume, overrides)
    else:
        resolved = api.resolve_config(config, overrides)
    if dry_run:
        console.print(yaml.safe_dump(resolved.to_dict(), sort_keys=False), end="", markup=False)
        return
    run_dir = api.train(resolved, resume=resume, quiet=quiet, **({} if resume is None else overrides))
    console.print(f"run folder: {run_dir}", markup=False)


@app.command()
def sample(
    run: Path = typer.Argument(..., help="run folder or checkpoint file"),
    n: int = typer.Option(64, help="number of samples"),
    out: Path = typer.Option(Path("samples.png"), help="grid.png, a folder of PNGs, or file.npz"),
    seed: int = typer.Option(0),
    klass: Optional[int] = typer.Option(None, "--class", help="class index for conditional models"),
    checkpoint: str = typer.Option("last", help="which checkpoint: last, best, step_000500..."),
    device: str = typer.Option("cpu"),
    truncation: Optional[float] = typer.Option(None, help="truncation psi for stylegan/biggan (1: none)"),
) -> None:
    """Generate samples from a trained run as a grid image, a folder of images or an .npz array."""
    import numpy as np
    import torch
    from PIL import Image

    import ganforge
    from ganforge.training.samples import save_grid, to_uint8

    if n < 1:
        raise GanforgeError(f"--n must be at least 1, got {n}")
    model = ganforge.load(run, checkpoint, device)
    inputs = model.sample_inputs(n, seed, labels=klass)
    if truncation is not None:
        from ganforge.families import having

        kind = model.family.capabilities.truncation
        if kind is None:
            raise GanforgeError(f"--truncation: model {model.config.model.name} has no truncation trick "
                                f"({', '.join(having('truncation'))} have)")
        if not 0.0 <= truncation <= 1.0:
            raise GanforgeError(f"--truncation must be in [0, 1] (1: none), got {truncation}")
        inputs.pop("truncation", None)
        if truncation != kind.neutral:
            inputs["truncation"] = torch.full((n,), float(truncation))
    images = model.generate(inputs)
    suffix = out.suffix.lower()
    if suffix in (".png", ".jpg", ".jpeg"):
        save_grid(images, out)
    elif suffix == ".npz":
        arrays = {"images": to_uint8(images).numpy()}
        if "label" in inputs:
            arrays["labels"] = inputs["label"].numpy()
        _writable(out)
        np.savez_compressed(out, **arrays)
    elif suffix == "":
        _writable(out / "x")
        for i, picture in enumerate(to_uint8(images).numpy()):
            Image.fromarray(picture.squeeze(-1) if picture.shape[-1] == 1 else picture).save(out / f"{i:05d}.png")
    else:
        raise GanforgeError(f"--out {out}: expected a .png/.jpg grid, a .npz file or a folder, got '{suffix}'")
    console.print(f"wrote {n} samples to {out}", markup=False)


def _writable(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GanforgeError(f"cannot write to {path.parent}: {error.strerror or error}") from None


@app.command()
def interpolate(
    run: Path = typer.Argument(..., help="run folder or checkpoint file"),
    out: Path = typer.Option(Path("walk.gif"), help="animated GIF"),
    n: int = typer.Option(8, help="walks shown side by side"),
    points: int = typer.Option(4, help="latent key points each walk loops through"),
    frames: int = typer.Option(16, help="frames between two key points"),
    seed: int = typer.Option(0),
    checkpoint: str = typer.Option("last"),
    fps: int = typer.Option(12),
) -> None:
    """Write a looping latent walk (spherical interpolation between random latents) as a GIF."""
    import torch
    from PIL import Image
    from torchvision.utils import make_grid

    import ganforge
    from ganforge.training.samples import slerp

    if out.suffix.lower() != ".gif":
        raise GanforgeError(f"--out {out}: interpolate writes an animated .gif")
    if min(n, points, frames) < 1 or points < 2:
        raise GanforgeError("--n and --frames must be at least 1 and --points at least 2")
    model = ganforge.load(run, checkpoint)
    keys = [model.sample_inputs(n, seed + k) for k in range(points)]
    pictures = []
    for k in range(points):
        a, b = keys[k], keys[(k + 1) % points]
        for t in torch.linspace(0, 1, frames + 1)[:-1]:
            inputs = {name: slerp(a[name], b[name], t.expand(n)) if a[name].is_floating_point() and a[name].ndim == 2
                      else a[name] for name in a}
            grid = make_grid(model.generate(inputs), nrow=n, normalize=True, value_range=(-1, 1))
            array = grid.mul(255).round().byte().permute(1, 2, 0).numpy()
            pictures.append(Image.fromarray(array))
    _writable(out)
    pictures[0].save(out, save_all=True, append_images=pictures[1:], duration=int(1000 / fps), loop=0)
    console.print(f"wrote {len(pictures)} frames to {out}", markup=False)


@app.command()
def info(run: Path = typer.Argument(..., help="run folder or checkpoint file")) -> None:
    """Show a run's model, data, progress, checkpoints and latest metrics."""
    import csv

    from rich.table import Table

    from ganforge import api
    from ganforge.training import checkpoint as ckpt

    path = api.find_checkpoint(run)
    meta = ckpt.read_meta(path)
    config = meta["config"]
    table = Table(show_header=False, title=str(run))
    table.add_row("model", f"{config['model']['name']} (latent {config['model']['latent_dim']}, width {config['model']['width']}, "
                           f"loss {config['model']['loss']}, penalty {config['model']['penalty']})")
    data = meta["data"]
    table.add_row("data", f"{data['name']}: {data['n']} images, {data['channels']} channel(s), "
                          f"{config['data']['resolution']} px, {len(data['classes'])} classes")
    table.add_row("progress", f"step {meta['step']} of {config['train']['steps']}, rollbacks {meta['rollbacks']}, "
                              f"lr x{meta['lr_scale']:g}")
    table.add_row("versions", ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    if path.parent.name == "checkpoints":
        table.add_row("checkpoints", ", ".join(p.stem for p in sorted(path.parent.glob("*.safetensors"))))
        metrics = path.parent.parent / "metrics.csv"
        if metrics.exists():
            with metrics.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
            if rows:
                table.add_row("latest", ", ".join(f"{k} {float(v):.4g}" for k, v in rows[-1].items() if v))
    if meta.get("best"):
        table.add_row("best", ", ".join(f"{k} {v}" for k, v in meta["best"].items()))
    console.print(table)


# modules adding commands of their own (image-to-image, super-resolution, tuning...): each defines
# `register(app)`; a module missing from this install is skipped
COMMAND_MODULES = (
    "ganforge.commands.generation",
    "ganforge.commands.translation",
    "ganforge.commands.superres",
    "ganforge.commands.tune",
)


def _register_commands() -> None:
    import importlib
    from importlib.util import find_spec

    for module in COMMAND_MODULES:
        try:
            present = find_spec(module) is not None
        except ModuleNotFoundError:
            present = False
        if present:
            importlib.import_module(module).register(app)


def _register_evaluate() -> None:
    from ganforge.metrics.cli import evaluate_command

    app.command("evaluate", context_settings={"allow_extra_args": False})(evaluate_command)


_register_evaluate()
_register_commands()


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    try:
        app()
    except GanforgeError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
