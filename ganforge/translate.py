"""Translation of images of any size with a trained pix2pix/CycleGAN run (tiled, padded to the generator's stride:
ganforge.tiling), and paired/unpaired scores of the results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.data import list_images, read_image
from ganforge.errors import GanforgeError
from ganforge.media.files import image_inputs, refuse_overlap
from ganforge.media.images import from_picture, write_image
from ganforge.media.progress import track
from ganforge.tiling import tiled


def translate_files(model, inputs: list[str | Path], out: str | Path, direction: str = "AtoB", tile: int = 512,
                    overlap: int = 32, masks: str | Path | None = None) -> list[Path]:
    """Translate image files/folders with a loaded run (`ganforge.load`), writing OUT/<same name>; returns paths.
    With `masks` (models that declare masks, e.g. restore), also MASKS/<same name>: the mask of the changed pixels
    (white: changed). An output folder that is, or is inside, an input folder, or would overwrite an input file,
    is refused."""
    family, generator = model.family, model.generator
    if direction not in family.capabilities.translate:
        if not family.capabilities.translate:
            raise GanforgeError(f"model {model.config.model.name} does not translate images (use an image-to-image "
                                "model such as pix2pix or cyclegan)")
        trained = " and ".join(family.capabilities.translate)
        raise GanforgeError(f"model {model.config.model.name} was trained {trained} only; --direction {direction} "
                            "needs a model trained that way")
    if masks is not None and not family.capabilities.masks:
        raise GanforgeError(f"model {model.config.model.name} does not predict masks (--masks needs a restore model "
                            "trained with the mask option)")
    mode = "L" if family.info.channels == 1 else "RGB"
    out = Path(out).expanduser()
    found = image_inputs(inputs)
    refuse_overlap(inputs, found, out)
    if masks is not None:
        masks = Path(masks).expanduser()
        refuse_overlap(inputs, found, masks)
    written = []
    for path, name in track(found, "translate"):
        image = from_picture(read_image(path, mode)).to(model.device)
        if masks is None:
            result = tiled(lambda x: family.translate(generator, x, direction), image, tile, overlap, family.stride)
        else:
            both = tiled(lambda x: family.translate_masks(generator, x), image, tile, overlap, family.stride)
            result, mask = both[:, :-1], both[:, -1:]
            write_image(mask * 2 - 1, (masks / name).with_suffix(".png"))
        write_image(result, out / name)
        written.append(out / name)
    return written


def _load_matching(outputs: list[Path], out_root: Path, folder: Path, mode: str) -> tuple[list, list]:
    """Pairs (output, ground truth) matched by relative name without extension."""
    truth = {str(p.relative_to(folder).with_suffix("")): p for p in list_images(folder)}
    pairs = []
    for path in outputs:
        key = str(path.relative_to(out_root).with_suffix(""))
        if key not in truth:
            raise GanforgeError(f"--targets {folder}: no ground truth named like {path.name}")
        pairs.append((path, truth[key]))
    return [read_image(a, mode) for a, _ in pairs], [read_image(b, mode) for _, b in pairs]


def paired_scores(outputs: list[Path], out_root: str | Path, targets: str | Path, inputs: list[Path] | None = None) -> dict:
    """Mean PSNR (dB) and SSIM of outputs against same-named ground truth (RGB, [0, 1], no border crop); with
    `inputs`, the same for the untranslated inputs as the baseline to beat, the share of images whose PSNR rose
    and the median per-image PSNR gain."""
    from ganforge.metrics.pixel import PROTOCOL, psnr, ssim

    def score(pictures, truths) -> dict[str, list[float]]:
        values = {"psnr": [], "ssim": []}
        for picture, truth in zip(pictures, truths):
            if picture.size != truth.size:
                raise GanforgeError(f"--targets: sizes differ ({picture.size} vs {truth.size})")
            x, y = from_picture(picture), from_picture(truth)
            values["psnr"].append(psnr(x, y))
            values["ssim"].append(ssim(x, y))
        return values

    targets, out_root = Path(targets).expanduser(), Path(out_root)
    pictures, truths = _load_matching(outputs, out_root, targets, "RGB")
    output = score(pictures, truths)
    result = {"n": len(pictures), "output": _means(output), "protocol": PROTOCOL}
    if inputs is not None:
        given = score([read_image(p, "RGB") for p in inputs], truths)
        gains = np.subtract(output["psnr"], given["psnr"])
        result |= {"input": _means(given), "improved": float(np.mean(gains > 0)), "median_gain": float(np.median(gains))}
    return result


def _means(values: dict[str, list[float]]) -> dict[str, float]:
    return {k: float(np.mean(v)) for k, v in values.items()}


def unpaired_scores(outputs: list[Path], domain: str | Path, extractor: str | None = None,
                    metrics: tuple[str, ...] = ("fid", "kid")) -> dict:
    """Fréchet distance and KID between translated images and target-domain images, on `extractor` features
    (default: the built-in one for the channel count); the result carries its evaluation record."""
    from ganforge.metrics import evaluate_images

    domain = Path(domain).expanduser()
    truth = list_images(domain)
    if not truth:
        raise GanforgeError(f"--domain {domain}: no image files found")
    size = 32

    def stack(paths: list[Path]) -> torch.Tensor:
        return torch.cat([F.interpolate(from_picture(read_image(p, "RGB")), size=(size, size), mode="bilinear",
                                        antialias=True, align_corners=False) for p in paths])

    fake, real = stack(outputs), stack(truth)
    if "kid" in metrics and min(len(fake), len(real)) < 2:
        raise GanforgeError("KID needs at least 2 images on each side")
    return evaluate_images(fake, real, metrics=metrics, extractor=extractor, image_format="png resized to 32 px")
