"""CLI: `ganforge translate` (apply a pix2pix/CycleGAN run to images of any size) and `ganforge make-pairs`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ganforge.errors import GanforgeError

PAIR_KINDS = ("watermark", "noise", "grey", "blur", "painting")


def translate(
    run: Path = typer.Argument(..., help="run folder or checkpoint file of a pix2pix or cyclegan model"),
    inputs: list[Path] = typer.Argument(..., help="image files and/or folders (searched recursively)"),
    out: Path = typer.Option(..., help="folder for the translated images (same file names as the inputs)"),
    direction: str = typer.Option("AtoB", help="AtoB | BtoA (CycleGAN translates both ways)"),
    checkpoint: str = typer.Option("last", help="which checkpoint: last, best, step_000500..."),
    device: str = typer.Option("cpu", help="auto | cpu | cuda | cuda:N | mps"),
    tile: int = typer.Option(512, help="images larger than this go through tiles of this side (0: whole image)"),
    overlap: int = typer.Option(32, help="context pixels run around each tile (cropped off)"),
    targets: Optional[Path] = typer.Option(None, help="ground-truth folder (same names): report PSNR/SSIM"),
    domain: Optional[Path] = typer.Option(None, help="target-domain folder: report FID/KID of the translations"),
    extractor: Optional[str] = typer.Option(None, help="feature extractor for --domain (default: by channels)"),
    masks: Optional[Path] = typer.Option(None, help="also write each image's mask of changed pixels here (restore)"),
    opt: list[str] = typer.Option([], "--opt", help="KEY=VALUE: an inference-only model option of the run "
                                  "(restore: window, ensemble, mask_seed), repeatable"),
) -> None:
    """Translate images with a trained image-to-image run, keeping their sizes and file names."""
    import ganforge
    from ganforge.media.files import image_inputs
    from ganforge.translate import paired_scores, translate_files, unpaired_scores

    if direction not in ("AtoB", "BtoA"):
        raise GanforgeError(f"--direction must be AtoB or BtoA, got '{direction}'")
    model = ganforge.load(run, checkpoint, device)
    if opt:
        from ganforge.flags import parse_options

        model.set_options({key.removeprefix("model.options."): value for key, value in parse_options(opt).items()})
    written = translate_files(model, inputs, out, direction, tile, overlap, masks)
    typer.echo(f"wrote {len(written)} images to {out}" + (f" and their masks to {masks}" if masks else ""))
    if targets is not None:
        sources = [path for path, _ in image_inputs(inputs)]
        scores = paired_scores(written, out, targets, inputs=sources)
        typer.echo(f"PSNR {scores['output']['psnr']:.2f} dB (input {scores['input']['psnr']:.2f}), "
                   f"SSIM {scores['output']['ssim']:.4f} (input {scores['input']['ssim']:.4f}) over "
                   f"{scores['n']} images, {scores['improved']:.0%} improved (median {scores['median_gain']:+.2f} dB); "
                   f"{scores['protocol']}")
    if domain is not None:
        scores = unpaired_scores(written, domain, extractor)
        record = scores["record"]
        typer.echo(f"FD {scores['fid']:.3f}, KID {scores['kid']:.5f} +- {scores['kid_std']:.5f} on the "
                   f"'{record.extractor}' extractor ({record.n_fake} translated vs {record.n_real} target images)")


def make_pairs(
    kind: str = typer.Argument(..., help="watermark | noise | grey | blur | painting"),
    source: Path = typer.Argument(..., help="folder of images (searched recursively)"),
    out: Path = typer.Argument(..., help="output folder: writes OUT/A (input) and OUT/B (target) with matching names"),
    seed: int = typer.Option(0, help="the same seed gives the same pairs"),
    limit: Optional[int] = typer.Option(None, help="use at most this many images"),
    max_size: Optional[int] = typer.Option(None, "--max-size", help="shrink images whose longer side exceeds this"),
    split: float = typer.Option(0.0, help="hold out this fraction (chosen by the seed): OUT/train and OUT/test"),
    copies: int = typer.Option(1, help="differently degraded pairs of each training image (more marks from few "
                                       "photos)"),
) -> None:
    """Turn a folder of images into a paired task for pix2pix or restore (A = degraded or photo, B = clean or
    painting; watermark also writes M, the mask of the marked pixels)."""
    from ganforge.data.pairs import held_out_count, make_pairs as make

    if kind not in PAIR_KINDS:
        raise GanforgeError(f"unknown pair maker '{kind}' (expected one of: {', '.join(PAIR_KINDS)})")
    count = make(kind, source, out, seed, limit, max_size, split, copies)
    folders = "A, B and M" if kind == "watermark" else "A and B"
    if split > 0:
        held = held_out_count(count, split)
        typer.echo(f"wrote {(count - held) * copies} pairs to {out}/train and {held} held-out pairs to {out}/test "
                   f"({folders})")
    else:
        typer.echo(f"wrote {count * copies} pairs to {out} ({folders})")


def register(app: typer.Typer) -> None:
    """Add `translate` and `make-pairs` to the ganforge CLI."""
    app.command("translate")(translate)
    app.command("make-pairs")(make_pairs)
