"""Paired and unpaired image sets for image-to-image translation, held in memory at a bounded size.

Layouts accepted by `load_paired` / `load_unpaired` (A is the input domain, B the target domain):
- `DIR/A/` and `DIR/B/` with matching file names (stems; the extensions may differ): paired;
- a folder of side-by-side AB images (the pix2pix data sets), or its `train/` sub-folder: paired;
- `DIR/trainA/` and `DIR/trainB/` (the CycleGAN data sets): unpaired (paired too when every name matches).
Any paired layout can be used unpaired. Images of any size are resized so their shorter side is `load_size` and
cropped at random to the training resolution per batch (the same crop for A and B when paired).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.data.batches import ShuffledEpochs
from ganforge.data.image_files import is_grey_mode, list_images, read_image
from ganforge.errors import GanforgeError
from ganforge.media import from_uint8

PAIRED_DIRS = (("A", "B"), ("trainA", "trainB"))


def default_load_size(resolution: int) -> int:
    """The side images are held at: 286 for 256 px crops, as in pix2pix/CycleGAN (resolution * 1.125 rounded)."""
    return int(round(resolution * 1.125))


def _read(path: Path, channels: int) -> torch.Tensor:
    picture = read_image(path, "L" if channels == 1 else "RGB")  # a GanforgeError naming the file if unreadable
    array = torch.from_numpy(np.asarray(picture, dtype=np.uint8).copy())
    return array.unsqueeze(0) if array.ndim == 2 else array.permute(2, 0, 1)


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(image.shape[-2:]) == size:
        return image.contiguous()
    out = F.interpolate(image[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return out[0].round_().clamp_(0, 255).to(torch.uint8)


def held_size(h: int, w: int, load_size: int, resolution: int, where: str) -> tuple[int, int]:
    """(h, w) scaled so the shorter side is `load_size`; an error when that is smaller than the crop."""
    if load_size < resolution:
        raise GanforgeError(f"model.options.load_size {load_size} is smaller than data.resolution {resolution}: "
                            "the random crop would not fit")
    scale = load_size / min(h, w)
    size = (max(load_size, round(h * scale)), max(load_size, round(w * scale)))
    if max(size) > 8 * load_size:
        raise GanforgeError(f"{where}: aspect ratio {w}x{h} is too extreme for training crops (over 8:1)")
    return size


def _channels(paths: list[Path], requested: int | None) -> int:
    if requested is not None:
        return requested
    from PIL import Image

    for path in paths[:200]:
        try:
            with Image.open(path) as image:
                if not is_grey_mode(image.mode):
                    return 3
        except Exception:
            continue
    return 1


def _images(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise GanforgeError(f"{folder}: no such folder ({what})")
    files = list_images(folder)
    if not files:
        raise GanforgeError(f"{folder}: no image files found ({what})")
    return files


def _by_stem(folder: Path, files: list[Path]) -> dict[str, Path]:
    named: dict[str, Path] = {}
    for path in files:
        key = str(path.relative_to(folder).with_suffix(""))
        if key in named:
            raise GanforgeError(f"{folder}: two images share the name '{key}' ({named[key].name}, {path.name})")
        named[key] = path
    return named


def find_layout(source: str) -> tuple[str, Path, Path | None]:
    """('folders', A, B), ('unpaired', trainA, trainB) or ('sidebyside', folder, None) for a data folder."""
    root = Path(source).expanduser()
    if not root.is_dir():
        raise GanforgeError(f"--data {source}: image-to-image models need a folder (A/ and B/, trainA/ and trainB/, "
                            "or side-by-side AB images)")
    for a, b in PAIRED_DIRS:
        if (root / a).is_dir() or (root / b).is_dir():
            if not ((root / a).is_dir() and (root / b).is_dir()):
                have, missing = (a, b) if (root / a).is_dir() else (b, a)
                raise GanforgeError(f"--data {source}: found {have}/ but not {missing}/")
            return ("folders" if a == "A" else "unpaired"), root / a, root / b
    if not list_images(root) and (root / "train").is_dir():
        root = root / "train"
    return "sidebyside", root, None


def crop_resolution(sides: list[int]) -> int:
    """The training crop for `resolution: null`: the largest power of two that fits every image's shorter side
    (`sides`), from 16 to 256 (the papers' size)."""
    side = min(sides)
    return int(min(256, max(16, 2 ** math.floor(math.log2(max(side, 1))))))


def load_paired(source: str, resolution: int | None, channels: int | None = None, load_size: int | None = None,
                limit: int | None = None, native: bool = False) -> "PairedImages":
    """Aligned (A, B) image pairs from A/ + B/ folders with matching names or from side-by-side AB images;
    `resolution` None picks the crop from the images (crop_resolution). `native` (and no `load_size`) holds the
    images at their own size, so crops keep the pixels' scale (restoration: marks and noise are not resampled)."""
    kind, a_dir, b_dir = find_layout(source)
    pairs_a, pairs_b, names = [], [], []
    if kind == "sidebyside":
        files = _images(a_dir, "side-by-side AB images")[:limit]
        chans = _channels(files, channels)
        for path in files:
            image = _read(path, chans)
            w = image.shape[-1]
            if w % 2:
                raise GanforgeError(f"{path}: a side-by-side AB image needs an even width, got {w} "
                                    "(or use A/ and B/ folders with matching names)")
            pairs_a.append(image[..., : w // 2])
            pairs_b.append(image[..., w // 2:])
            names.append(str(path.relative_to(a_dir)))
    else:
        named_a = _by_stem(a_dir, _images(a_dir, "input domain A"))
        named_b = _by_stem(b_dir, _images(b_dir, "target domain B"))
        only_a, only_b = sorted(set(named_a) - set(named_b)), sorted(set(named_b) - set(named_a))
        if only_a or only_b:
            side, lone = (a_dir, only_a) if only_a else (b_dir, only_b)
            other = b_dir if only_a else a_dir
            hint = " (trainA/trainB is the unpaired layout: use --model cyclegan)" if kind == "unpaired" else ""
            raise GanforgeError(f"--data {source}: {len(only_a) + len(only_b)} file names do not match between "
                                f"{a_dir.name}/ and {b_dir.name}/, e.g. '{lone[0]}' is in {side.name}/ but not in "
                                f"{other.name}/{hint}")
        keys = sorted(named_a)[:limit]
        chans = _channels([named_a[k] for k in keys] + [named_b[k] for k in keys], channels)
        for key in keys:
            a, b = _read(named_a[key], chans), _read(named_b[key], chans)
            ha, wa = a.shape[-2:]
            hb, wb = b.shape[-2:]
            if abs(ha * wb - hb * wa) > 0.02 * ha * wb:
                raise GanforgeError(f"--data {source}: '{key}' is {wa}x{ha} in {a_dir.name}/ but {wb}x{hb} in "
                                    f"{b_dir.name}/ (a pair must show the same framing)")
            pairs_a.append(a)
            pairs_b.append(_resize(b, (ha, wa)))
            names.append(key)
    resolution = resolution or crop_resolution([min(a.shape[-2:]) for a in pairs_a])
    load_size = load_size or (None if native else default_load_size(resolution))
    held_a, held_b = [], []
    for a, b, name in zip(pairs_a, pairs_b, names):
        size = held_size(*a.shape[-2:], load_size, resolution, name) if load_size else tuple(a.shape[-2:])
        held_a.append(_resize(a, size))
        held_b.append(_resize(b, size))
    return PairedImages(held_a, held_b, names, resolution, name=source, paired=True)


def load_unpaired(source: str, resolution: int | None, channels: int | None = None, load_size: int | None = None,
                  limit: int | None = None) -> "PairedImages":
    """Two unaligned domains from trainA/ + trainB/ (or any paired layout, its pairing ignored); `resolution`
    None picks the crop from the images (crop_resolution)."""
    kind, a_dir, b_dir = find_layout(source)
    if kind == "sidebyside":
        data = load_paired(source, resolution, channels, load_size, limit)
        return PairedImages(data.a, data.b, data.names, data.resolution, name=source, paired=False)
    files_a = _images(a_dir, "domain A")[:limit]
    files_b = _images(b_dir, "domain B")[:limit]
    chans = _channels(files_a + files_b, channels)
    if resolution is None:
        from PIL import Image

        sides = []
        for path in files_a + files_b:
            with Image.open(path) as picture:  # the header only
                sides.append(min(picture.size))
        resolution = crop_resolution(sides)
    load_size = load_size or default_load_size(resolution)
    domains = []
    for files in (files_a, files_b):
        held = []
        for path in files:
            image = _read(path, chans)
            held.append(_resize(image, held_size(*image.shape[-2:], load_size, resolution, str(path))))
        domains.append(held)
    names = [str(p.relative_to(a_dir)) for p in files_a]
    return PairedImages(domains[0], domains[1], names, resolution, name=source, paired=False)


class PairedImages:
    """Two image domains (lists of uint8 (C, H, W) tensors); aligned pairs when `paired`."""

    classes: list[str] = []
    labels = None

    def __init__(self, a: list[torch.Tensor], b: list[torch.Tensor], names: list[str], resolution: int,
                 name: str = "", paired: bool = True):
        if not a or not b:
            raise GanforgeError(f"{name}: an image-to-image data set needs images in both domains")
        if paired and len(a) != len(b):
            raise AssertionError("paired domains must have the same length")
        self.a, self.b, self.names = a, b, names
        self.resolution, self.name, self.paired = resolution, name, paired
        for image in a + b:
            if min(image.shape[-2:]) < resolution:
                raise GanforgeError(f"{name}: an image of {image.shape[-1]}x{image.shape[-2]} is smaller than the "
                                    f"{resolution}px training crop")

    def __len__(self) -> int:
        return len(self.a)

    @property
    def channels(self) -> int:
        return self.a[0].shape[0]

    def centre(self, domain: str, indices: list[int] | torch.Tensor) -> torch.Tensor:
        """Centre crops at the training resolution as float in [-1, 1], shape (n, C, res, res)."""
        images = self.a if domain == "a" else self.b
        r = self.resolution
        out = []
        for i in indices:
            image = images[int(i)]
            top, left = (image.shape[-2] - r) // 2, (image.shape[-1] - r) // 2
            out.append(image[:, top:top + r, left:left + r])
        return from_uint8(torch.stack(out))

    def as_float(self) -> torch.Tensor:
        """The target-domain (B) images, centre-cropped, as float32 in [-1, 1]."""
        return self.centre("b", range(len(self.b)))

    def batches(self, batch_size: int, device: torch.device, seed: int, flip: bool = False) -> "PairedBatches":
        """Endless shuffled batches {"a", "b"} of random crops on `device`."""
        return PairedBatches(self, batch_size, device, seed, flip)


class PairedBatches(ShuffledEpochs):
    """Shuffled epochs over domain A; B is the aligned partner (paired) or a random B image (unpaired).

    Crops, flips and unpaired partners are drawn from a generator seeded by the epoch's seed and the position in
    it, so the state (RNG at the epoch start, offset) reproduces exactly the batches an uninterrupted run sees.
    """

    def __init__(self, data: PairedImages, batch_size: int, device: torch.device, seed: int, flip: bool = False):
        if batch_size > len(data):
            raise GanforgeError(f"train.batch_size {batch_size} is larger than the data set ({len(data)} images)")
        self.data = data
        self.a = [image.to(device) for image in data.a]
        self.b = [image.to(device) for image in data.b]
        self.flip, self.device = flip, device
        super().__init__(len(self.a), batch_size, seed)

    def _crop(self, image: torch.Tensor, top: int, left: int, flip: bool) -> torch.Tensor:
        r = self.data.resolution
        crop = image[:, top:top + r, left:left + r]
        return crop.flip(-1) if flip else crop

    def _place(self, image: torch.Tensor, rng: torch.Generator) -> tuple[int, int, bool]:
        r = self.data.resolution
        top = int(torch.randint(0, image.shape[-2] - r + 1, (1,), generator=rng))
        left = int(torch.randint(0, image.shape[-1] - r + 1, (1,), generator=rng))
        flip = self.flip and bool(torch.rand((), generator=rng) < 0.5)
        return top, left, flip

    def next(self) -> dict[str, torch.Tensor]:
        index, seed = self.take()
        rng = torch.Generator().manual_seed(seed)
        crops_a, crops_b = [], []
        for i in index.tolist():
            place = self._place(self.a[i], rng)
            crops_a.append(self._crop(self.a[i], *place))
            if self.data.paired:
                crops_b.append(self._crop(self.b[i], *place))
            else:
                j = int(torch.randint(0, len(self.b), (1,), generator=rng))
                crops_b.append(self._crop(self.b[j], *self._place(self.b[j], rng)))
        return {"a": from_uint8(torch.stack(crops_a)), "b": from_uint8(torch.stack(crops_b))}

