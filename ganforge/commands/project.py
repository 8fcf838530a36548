"""`ganforge project`: find the latent that reconstructs a real image (noise-to-image families), and write the
latent, the reconstruction and an animation of the search. Heavy imports happen inside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ganforge.errors import GanforgeError

ANIMATIONS = (".gif", ".mp4")


def project_command(
    run: Path = typer.Argument(..., help="run folder or checkpoint file of a model that makes images from noise"),
    image: Path = typer.Argument(..., help="the image to reconstruct (resized and centre-cropped to the model's size)"),
    out: Path = typer.Option(Path("projection"), help="folder for latent.npy, target.png, reconstruction.png, the "
                                                       "animation and projection.json"),
    steps: int = typer.Option(300, help="optimisation steps"),
    lr: float = typer.Option(0.1, help="Adam learning rate (on the latent in units of its spread)"),
    features: str = typer.Option("auto", help="feature distance: auto (digits for grey, cifar10 for RGB), digits, "
                                 "cifar10, a classifier .safetensors, vgg (torchvision VGG16 weights in the torch hub "
                                 "cache) or none"),
    feature_weight: float = typer.Option(1.0, help="weight of the feature distance"),
    pixel_weight: float = typer.Option(1.0, help="weight of the pixel mean squared error"),
    klass: Optional[int] = typer.Option(None, "--class", help="conditional models: the class to project into "
                                        "(default: the class whose random latents fit best)"),
    starts: int = typer.Option(8, help="random latents tried (per class) before the best one is optimised"),
    seed: int = typer.Option(0),
    animation: str = typer.Option(".gif", help="animation format: .gif or .mp4"),
    zoom: int = typer.Option(4, help="enlarge the animation this many times (nearest neighbour)"),
    checkpoint: str = typer.Option("last", help="which checkpoint: last, best, step_000500..."),
    device: str = typer.Option("cpu", help="auto | cpu | cuda | cuda:N | mps"),
) -> None:
    """Project a real image into a model's latent space (W for StyleGAN, z otherwise) with a pixel + feature loss;
    feed the latent back with `ganforge sample RUN --latents OUT/latent.npy`."""
    import numpy as np

    import ganforge
    from ganforge import media
    from ganforge.generation import read_images
    from ganforge.media.files import writing
    from ganforge.media.images import write_image
    from ganforge.projection import project

    if animation not in ANIMATIONS:
        raise GanforgeError(f"--animation must be one of {', '.join(ANIMATIONS)}, got '{animation}'")
    model = ganforge.load(run, checkpoint, device)
    info = model.family.info
    target = read_images([image], info.resolution, info.channels)
    result = project(model, target, steps, lr, features, feature_weight, pixel_weight, label=klass, starts=starts,
                     seed=seed, progress=True)
    with writing(out / "latent.npy") as path:
        np.save(path, result.latent.numpy())
    write_image(result.target, out / "target.png")
    write_image(result.reconstruction, out / "reconstruction.png")
    media.save(result.animation(), out / f"projection{animation}", zoom=zoom, nrow=2)
    label = int(result.inputs["label"][0]) if "label" in result.inputs else None
    again = f"ganforge sample {run} --latents {out / 'latent.npy'} --n 1"
    if label is not None:
        again += f" --class {label}"
    record = {"run": str(run), "checkpoint": checkpoint, "image": str(image),
              "latent_space": model.family.capabilities.latent, "class": label, "steps": steps, "lr": lr,
              "features": features, "feature_weight": feature_weight, "pixel_weight": pixel_weight, "starts": starts,
              "seed": seed, "loss_start": result.losses[0], "loss_end": result.losses[-1],
              "random_latent_loss": result.random_loss,
              "pixel_mse": float((result.reconstruction - result.target).pow(2).mean()), "sample_again": again}
    with writing(out / "projection.json") as path:
        path.write_text(json.dumps(record, indent=1))
    typer.echo(f"loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f} (random latents: {result.random_loss:.4f}); "
               f"wrote latent.npy ({record['latent_space']} space), target.png, reconstruction.png, "
               f"projection{animation}, projection.json to {out}")
    typer.echo(f"generate it again: {again}")


def register(app: typer.Typer) -> None:
    """Add `project` to the ganforge CLI."""
    app.command("project")(project_command)
