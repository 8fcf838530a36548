"""Translation of images of any size with a trained pix2pix/CycleGAN run: padding to the generator's stride,
overlapping tiles blended with linear ramps for large images (bounded memory), and paired/unpaired scores."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.data.sources import IMAGE_SUFFIXES, list_images, read_image
from ganforge.errors import GanforgeError

Net = Callable[[torch.Tensor], torch.Tensor]


def pad_run(net: Net, image: torch.Tensor, stride: int) -> torch.Tensor:
    """net(image) for (N, C, H, W) of any size: reflect-pad to a multiple of `stride`, crop the output back."""
    h, w = image.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        image = F.pad(image, (0, pw, 0, ph), mode=mode)
    return net(image)[..., :h, :w]


def _starts(length: int, tile: int, overlap: int, stride: int) -> list[int]:
    """Tile starts at multiples of the stride (strided nets are shift-equivariant only by whole strides)."""
    if length <= tile:
        return [0]
    step = max(stride, (tile - overlap) // stride * stride)
    last = -(-(length - tile) // stride) * stride  # the last tile may be shorter: it ends at the image border
    return sorted(set(range(0, last, step)) | {last})


def _ramp(length: int, overlap: int, first: bool, last: bool) -> torch.Tensor:
    """Blend weights along one side of a tile: linear ramps over the overlap, except at the image border."""
    weight = torch.ones(length)
    if overlap > 0:
        ramp = torch.linspace(0, 1, overlap + 2)[1:-1]
        if not first:
            weight[:overlap] = ramp
        if not last:
            weight[-overlap:] = ramp.flip(0)
    return weight


@torch.no_grad()
def translate_tiled(net: Net, image: torch.Tensor, stride: int, tile: int = 512, overlap: int = 32) -> torch.Tensor:
    """net(image) for one (1, C, H, W) image of any size; images larger than `tile` go through overlapping tiles
    whose outputs are blended, so memory stays bounded by the tile size."""
    if tile < stride or tile % stride:
        raise GanforgeError(f"--tile {tile} must be a positive multiple of the generator's stride {stride}")
    if not 0 <= overlap < tile // 2:
        raise GanforgeError(f"--overlap {overlap} must be in [0, tile/2)")
    h, w = image.shape[-2:]
    if h <= tile and w <= tile:
        return pad_run(net, image, stride)
    out = None
    total = torch.zeros(1, 1, h, w, device=image.device)
    ys, xs = _starts(h, tile, overlap, stride), _starts(w, tile, overlap, stride)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            piece = pad_run(net, image[..., y:y + tile, x:x + tile], stride)
            th, tw = piece.shape[-2:]
            weight = (_ramp(th, min(overlap, th // 2), i == 0, i == len(ys) - 1)[:, None]
                      * _ramp(tw, min(overlap, tw // 2), j == 0, j == len(xs) - 1)[None, :]).to(image.device)
            if out is None:
                out = torch.zeros(1, piece.shape[1], h, w, device=image.device)
            out[..., y:y + th, x:x + tw] += piece * weight
            total[..., y:y + th, x:x + tw] += weight
    return out / total


def expand_inputs(inputs: list[str | Path]) -> list[tuple[Path, Path]]:
    """(file, name to write) for files and folders (recursively, names relative to the folder)."""
    found = []
    for given in inputs:
        path = Path(given).expanduser()
        if path.is_dir():
            files = list_images(path)
            if not files:
                raise GanforgeError(f"{path}: no image files found")
            found += [(f, f.relative_to(path)) for f in files]
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise GanforgeError(f"{path}: not an image file (expected {', '.join(sorted(IMAGE_SUFFIXES))})")
            found.append((path, Path(path.name)))
        else:
            raise GanforgeError(f"{path}: no such file or folder")
    names = [str(name) for _, name in found]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise GanforgeError(f"two inputs would both be written as {duplicate}")
    return found


def to_tensor(picture, device) -> torch.Tensor:
    array = torch.from_numpy(np.asarray(picture, dtype=np.uint8).copy())
    array = array[None] if array.ndim == 2 else array.permute(2, 0, 1)
    return array[None].float().div(127.5).sub(1.0).to(device)


def to_picture(image: torch.Tensor):
    from PIL import Image

    array = image[0].clamp(-1, 1).add(1).mul(127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def translate_files(model, inputs: list[str | Path], out: str | Path, direction: str = "AtoB", tile: int = 512,
                    overlap: int = 32) -> list[Path]:
    """Translate image files/folders with a loaded run (`ganforge.load`), writing OUT/<same name>; returns paths."""
    family, generator = model.family, model.generator
    if direction not in family.capabilities.translate:
        if not family.capabilities.translate:
            raise GanforgeError(f"model {model.config.model.name} does not translate images (use an image-to-image "
                                "model such as pix2pix or cyclegan)")
        raise GanforgeError(f"model {model.config.model.name} translates {' and '.join(family.capabilities.translate)} "
                            f"only, not {direction}")
    mode = "L" if family.info.channels == 1 else "RGB"
    out = Path(out).expanduser()
    written = []
    for path, name in expand_inputs(inputs):
        try:
            picture = read_image(path, mode)
        except Exception:
            raise GanforgeError(f"{path}: cannot read the image") from None
        image = to_tensor(picture, model.device)
        result = translate_tiled(lambda x: family.translate(generator, x, direction), image, family.stride, tile, overlap)
        target = out / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            to_picture(result).save(target, **({"quality": 95} if target.suffix.lower() in (".jpg", ".jpeg") else {}))
        except OSError as error:
            raise GanforgeError(f"cannot write {target}: {error.strerror or error}") from None
        written.append(target)
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
            x, y = to_tensor(picture, "cpu"), to_tensor(truth, "cpu")
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
        return torch.cat([F.interpolate(to_tensor(read_image(p, "RGB"), "cpu"), size=(size, size), mode="bilinear",
                                        antialias=True, align_corners=False) for p in paths])

    fake, real = stack(outputs), stack(truth)
    if "kid" in metrics and min(len(fake), len(real)) < 2:
        raise GanforgeError("KID needs at least 2 images on each side")
    return evaluate_images(fake, real, metrics=metrics, extractor=extractor, image_format="png resized to 32 px")
