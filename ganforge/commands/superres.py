"""Super-resolution commands: `ganforge upscale` (tiled inference on any image size) and `ganforge sr-eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ganforge.errors import GanforgeError


def _inputs(paths: list[Path]) -> list[tuple[Path, Path]]:
    """(file, name to write) for image files and folders (recursively, keeping relative paths)."""
    from ganforge.data import list_images

    found = []
    for path in paths:
        if path.is_dir():
            files = list_images(path)
            if not files:
                raise GanforgeError(f"{path}: no image files found")
            found += [(file, file.relative_to(path)) for file in files]
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            raise GanforgeError(f"{path}: no such image file or folder")
    return found


def upscale(
    run: Path = typer.Argument(..., help="super-resolution run folder or checkpoint"),
    inputs: list[Path] = typer.Argument(..., help="image files or folders"),
    out: Path = typer.Option(..., "--out", help="output folder; files keep their names"),
    tile: int = typer.Option(256, help="tile size in input pixels (0: whole image at once)"),
    overlap: int = typer.Option(16, help="context pixels around each tile"),
    alpha: Optional[float] = typer.Option(None, help="network interpolation: (1-alpha) PSNR + alpha GAN weights"),
    psnr: Optional[Path] = typer.Option(None, help="PSNR-oriented run for --alpha (default: the run's pretrained)"),
    checkpoint: str = typer.Option("last", help="which checkpoint: last, best, step_000500..."),
    device: str = typer.Option("cpu"),
) -> None:
    """Upscale images of any size with a trained SRResNet / SRGAN / ESRGAN, tile by tile."""
    import numpy as np
    import torch
    from PIL import Image

    from ganforge.data import read_image
    from ganforge.upscale import load_upscaler, upscale_tiled

    files = _inputs(inputs)
    network, scale, channels = load_upscaler(run, checkpoint, device, alpha, psnr)
    out_root = out.resolve()
    for file, name in files:
        if (out_root / name).resolve() == file.resolve():
            raise GanforgeError(f"--out {out} would overwrite the input {file}; choose another folder")
    for file, name in files:
        try:
            picture = np.asarray(read_image(file, "L" if channels == 1 else "RGB"))
        except Exception as error:
            raise GanforgeError(f"{file}: cannot read the image ({type(error).__name__})") from None
        image = torch.from_numpy(picture.copy()).float().div(127.5).sub(1)
        image = image[None, None] if image.ndim == 2 else image.permute(2, 0, 1)[None]
        result = upscale_tiled(network, image, scale, tile, overlap)
        array = result[0].clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        target = out / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array[..., 0] if channels == 1 else array).save(target, quality=95)
        except (OSError, ValueError) as error:
            raise GanforgeError(f"cannot write {target}: {error}") from None
        typer.echo(f"{file} ({picture.shape[1]}x{picture.shape[0]}) -> {target} "
                   f"({array.shape[1]}x{array.shape[0]})")


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
    from ganforge.upscale import load_upscaler, upscale_tiled

    network, scale, channels = load_upscaler(run, checkpoint, device, alpha, psnr)
    hr = []
    for source in images:
        hr += load_hr_images(source, 2 * scale + 11, channels)[0]
    scores = evaluate_sr(lambda lr: upscale_tiled(network, lr, scale, tile), hr, scale)
    typer.echo(f"x{scale} on {scores['n']} images ({scores['protocol']})")
    typer.echo(f"  model   PSNR {scores['psnr']:.2f} dB  SSIM {scores['ssim']:.4f}")
    typer.echo(f"  bicubic PSNR {scores['bicubic_psnr']:.2f} dB  SSIM {scores['bicubic_ssim']:.4f}")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(scores, indent=1))


def register(app: typer.Typer) -> None:
    app.command("upscale")(upscale)
    app.command("sr-eval")(sr_eval)
