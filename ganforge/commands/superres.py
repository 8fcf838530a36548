"""Super-resolution commands: `ganforge upscale` (tiled inference on any image size) and `ganforge sr-eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def upscale(
    run: Path = typer.Argument(..., help="super-resolution run folder or checkpoint"),
    inputs: list[Path] = typer.Argument(..., help="image files or folders"),
    out: Path = typer.Option(..., "--out", help="output folder; files keep their names"),
    tile: int = typer.Option(256, help="tile size in input pixels (0: whole image at once)"),
    overlap: int = typer.Option(16, help="context pixels around each tile"),
    alpha: Optional[float] = typer.Option(None, help="network interpolation: (1-alpha) PSNR + alpha GAN weights"),
    psnr: Optional[Path] = typer.Option(None, help="PSNR-oriented run for --alpha (default: the run's pretrained)"),
    checkpoint: str = typer.Option("last", help="which checkpoint: last, best, step_000500..."),
    device: str = typer.Option("cpu", help="auto | cpu | cuda | cuda:N | mps"),
) -> None:
    """Upscale images of any size with a trained SRResNet / SRGAN / ESRGAN, tile by tile."""
    from ganforge.data import read_image
    from ganforge.media.files import image_inputs, refuse_overlap
    from ganforge.media.images import from_picture, write_image
    from ganforge.media.progress import track
    from ganforge.tiling import tiled
    from ganforge.upscale import load_upscaler

    files = image_inputs(inputs)
    refuse_overlap(inputs, files, out)
    network, scale, channels = load_upscaler(run, checkpoint, device, alpha, psnr)
    for file, name in track(files, "upscale"):
        image = from_picture(read_image(file, "L" if channels == 1 else "RGB"))
        result = tiled(network, image, tile, overlap, scale=scale)
        write_image(result, out / name)
        typer.echo(f"{file} ({image.shape[-1]}x{image.shape[-2]}) -> {out / name} "
                   f"({result.shape[-1]}x{result.shape[-2]})")


def sr_eval(
    run: Path = typer.Argument(..., help="super-resolution run folder or checkpoint"),
    images: list[str] = typer.Argument(..., help="high-resolution image files, folders, or 'skimage'"),
    tile: int = typer.Option(256, help="tile size in input pixels (0: whole image)"),
    alpha: Optional[float] = typer.Option(None, help="network interpolation weight of the GAN model"),
    psnr: Optional[Path] = typer.Option(None, help="PSNR-oriented run for --alpha"),
    checkpoint: str = typer.Option("last"),
    device: str = typer.Option("cpu"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the scores (per image too) as JSON"),
) -> None:
    """Y-channel PSNR / SSIM of a run on held-out HR images (bicubic-downscaled), next to bicubic upscaling."""
    import json

    from ganforge.data.sr import load_hr_images
    from ganforge.metrics.superres import evaluate_sr
    from ganforge.tiling import tiled
    from ganforge.upscale import load_upscaler

    network, scale, channels = load_upscaler(run, checkpoint, device, alpha, psnr)
    hr = []
    for source in images:
        hr += load_hr_images(source, 2 * scale + 11, channels)[0]
    scores = evaluate_sr(lambda lr: tiled(network, lr, tile, 16, scale=scale), hr, scale)
    typer.echo(f"x{scale} on {scores['n']} images ({scores['protocol']})")
    typer.echo(f"  model   PSNR {scores['psnr']:.2f} dB  SSIM {scores['ssim']:.4f}")
    typer.echo(f"  bicubic PSNR {scores['bicubic_psnr']:.2f} dB  SSIM {scores['bicubic_ssim']:.4f}")
    if json_out is not None:
        from ganforge.media.files import writing

        with writing(json_out):
            json_out.write_text(json.dumps(scores, indent=1))


def register(app: typer.Typer) -> None:
    app.command("upscale")(upscale)
    app.command("sr-eval")(sr_eval)
