"""Image-generation commands: `style-mix` (StyleGAN), `reconstruct` and `interpolate-images` (VAE-GAN)."""

from __future__ import annotations

from pathlib import Path
import typer

from ganforge.errors import GanforgeError


def _load(run: Path, checkpoint: str, capability: str):
    """A loaded run whose family declares `capability` (e.g. style_mixing, encode)."""
    import ganforge
    from ganforge.families import having

    model = ganforge.load(run, checkpoint)
    if not getattr(model.family.capabilities, capability):
        raise GanforgeError(f"{run}: model {model.config.model.name} has no {capability.replace('_', ' ')}; "
                            f"this command works with {', '.join(having(capability))} runs")
    return model


def style_mix(
    run: Path = typer.Argument(..., help="stylegan run folder or checkpoint file"),
    out: Path = typer.Option(Path("style_mix.png"), help="grid PNG"),
    zoom: int = typer.Option(1, help="enlarge the grid this many times (nearest neighbour)"),
    rows: int = typer.Option(5, help="destination latents (rows)"),
    cols: int = typer.Option(5, help="source latents (columns)"),
    layers: str = typer.Option("coarse", help="styles taken from the sources: coarse | middle | fine | A-B"),
    truncation: float = typer.Option(1.0, help="truncation psi towards the mean w (1: off)"),
    seed: int = typer.Option(0),
    checkpoint: str = typer.Option("last"),
) -> None:
    """Write the style-mixing grid: sources across the top, destinations down the left, mixes in between."""
    from ganforge import media
    from ganforge.generation import style_mix_grid

    if rows < 1 or cols < 1:
        raise GanforgeError("--rows and --cols must be at least 1")
    model = _load(run, checkpoint, "style_mixing")
    grid, span = style_mix_grid(model, rows, cols, layers, truncation, seed)
    media.save(grid, out, zoom=zoom, nrow=cols + 1)
    typer.echo(f"wrote a {rows}x{cols} style-mixing grid (layers {span.start}-{span.stop - 1}) to {out}")


def reconstruct(
    run: Path = typer.Argument(..., help="vaegan run folder or checkpoint file"),
    images: list[Path] = typer.Argument(..., help="image files to encode and decode"),
    out: Path = typer.Option(Path("reconstructions"), help="folder for NAME_recon.png files and grid.png"),
    checkpoint: str = typer.Option("last"),
) -> None:
    """Encode real images and decode them again; writes each reconstruction and an input/output grid."""
    import torch

    from ganforge import generation, media
    from ganforge.media.images import write_image

    model = _load(run, checkpoint, "encode")
    info = model.family.info
    real = generation.read_images(images, info.resolution, info.channels)
    recon = generation.reconstruct(model, real)
    for path, picture in zip(images, recon):
        write_image(picture, out / f"{path.stem}_recon.png")
    media.save(media.Images(torch.cat([real, recon])), out / "grid.png", nrow=len(images))
    typer.echo(f"wrote {len(images)} reconstructions and grid.png (inputs above, reconstructions below) to {out}")


def interpolate_images(
    run: Path = typer.Argument(..., help="vaegan run folder or checkpoint file"),
    first: Path = typer.Argument(..., help="image to start from"),
    second: Path = typer.Argument(..., help="image to end at"),
    out: Path = typer.Option(Path("morph.png"), help="a .png strip, or an animated .gif or .mp4"),
    frames: int = typer.Option(8, help="images from first to second, both ends included"),
    checkpoint: str = typer.Option("last"),
    zoom: int = typer.Option(1, help="enlarge the strip or animation this many times (nearest neighbour)"),
) -> None:
    """Walk linearly between the latents of two real images and decode every step."""
    import torch

    from ganforge import generation, media

    if frames < 2:
        raise GanforgeError(f"--frames must be at least 2, got {frames}")
    animated = out.suffix.lower() in (".gif", ".mp4")
    if not animated:
        media.check_format(out, "image")
    model = _load(run, checkpoint, "encode")
    info = model.family.info
    real = generation.read_images([first, second], info.resolution, info.channels)
    with torch.no_grad():
        a, b = model.family.encode(real)
        t = torch.linspace(0, 1, frames).unsqueeze(1)
        pictures = model.generate({"noise": a.lerp(b, t)}).tensor
    if animated:  # there and back again, without repeating the ends
        there_and_back = torch.cat([pictures, pictures.flip(0)[1:-1]])
        media.save(media.Video(there_and_back.unsqueeze(0), fps=8), out, zoom=zoom)
    else:
        media.save(media.Images(torch.cat([real[:1], pictures, real[1:]])), out, zoom=zoom, nrow=frames + 2)
    typer.echo(f"wrote {frames} interpolated images to {out}")


def register(app: typer.Typer) -> None:
    """Add the generation commands to the ganforge CLI."""
    app.command("style-mix")(style_mix)
    app.command("reconstruct")(reconstruct)
    app.command("interpolate-images")(interpolate_images)
