"""Paired and unpaired image sets for image-to-image translation: the files indexed from their headers
(`PairFiles`), decoded into memory at a bounded size (`PairedImages`) or streamed (ganforge.data.paired_stream).

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


class PairFiles:
    """Where the pixels of an image-to-image data set are, without decoding them: each item's file(s), its size as
    held for cropping (from the file headers) and how it is read. Both the in-memory set (everything decoded once)
    and the streamed one (ganforge.data.paired_stream: items decoded by DataLoader workers as batches need them)
    read items through `read`, so they hold the same pixels."""

    def __init__(self, kind: str, files_a: list[Path], files_b: list[Path], names: list[str], channels: int,
                 originals_a: list[tuple[int, int]], originals_b: list[tuple[int, int]], resolution: int,
                 load_size: int | None, source: str):
        self.kind, self.files_a, self.files_b, self.names = kind, files_a, files_b, names
        self.channels, self.resolution, self.source = channels, resolution, source
        self.paired = kind != "unpaired"  # a paired layout can be used unpaired (set False)
        self.originals_a = originals_a  # (h, w) as decoded; a folders' B image is first resized to its A's size
        self.sizes_a = [held_size(*hw, load_size, resolution, n) if load_size else hw
                        for hw, n in zip(originals_a, names)]
        self.sizes_b = [held_size(*hw, load_size, resolution, str(f)) if load_size else hw
                        for hw, f in zip(originals_b, files_b)]
        for sizes, files in ((self.sizes_a, files_a), (self.sizes_b, files_b)):
            for (h, w), path in zip(sizes, files):
                if min(h, w) < resolution:
                    raise GanforgeError(f"{source}: {path.name} is {w}x{h}, smaller than the {resolution}px training "
                                        "crop")

    def __len__(self) -> int:
        return len(self.files_a)

    def decoded_mb(self) -> float:
        """What both domains take decoded at their held sizes, in MiB."""
        pixels = sum(h * w for h, w in self.sizes_a) + sum(h * w for h, w in self.sizes_b)
        return pixels * self.channels / 2 ** 20

    def read(self, domain: str, index: int) -> torch.Tensor:
        """Item `index` of domain "a" or "b" as uint8 (C, H, W) at its held size; GanforgeError if unreadable."""
        if self.kind == "sidebyside":
            image = _read(self.files_a[index], self.channels)
            w = image.shape[-1]
            image = image[..., : w // 2] if domain == "a" else image[..., w // 2:]
        elif domain == "a":
            image = _read(self.files_a[index], self.channels)
        else:
            image = _read(self.files_b[index], self.channels)
            if self.kind == "folders":
                image = _resize(image, self.originals_a[index])
        return _resize(image, (self.sizes_a if domain == "a" else self.sizes_b)[index])

    def read_pair(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Items `index` of both domains (a side-by-side file decoded once)."""
        if self.kind != "sidebyside":
            return self.read("a", index), self.read("b", index)
        image = _read(self.files_a[index], self.channels)
        w = image.shape[-1]
        return (_resize(image[..., : w // 2], self.sizes_a[index]), _resize(image[..., w // 2:], self.sizes_b[index]))

    def in_memory(self) -> "PairedImages":
        """Every item decoded (the in-memory set)."""
        if self.kind == "sidebyside":
            a, b = map(list, zip(*(self.read_pair(i) for i in range(len(self)))))
        else:
            a = [self.read("a", i) for i in range(len(self.files_a))]
            b = [self.read("b", i) for i in range(len(self.files_b))]
        return PairedImages(a, b, self.names, self.resolution, name=self.source, paired=self.paired)


def _header_size(path: Path) -> tuple[int, int]:
    """(h, w) of an image file from its header (the reader applies no rotation, so decoding gives the same)."""
    from PIL import Image

    try:
        with Image.open(path) as picture:
            w, h = picture.size
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise GanforgeError(f"{path}: cannot read the image ({reason})") from None
    return h, w


def paired_files(source: str, resolution: int | None, channels: int | None = None, load_size: int | None = None,
                 limit: int | None = None, native: bool = False) -> PairFiles:
    """The aligned (A, B) pairs of a folder (A/ + B/ with matching names, or side-by-side AB images), from the file
    headers alone; `resolution` None picks the crop from the images (crop_resolution). `native` (and no
    `load_size`) holds the images at their own size, so crops keep the pixels' scale (restoration: marks and noise
    are not resampled)."""
    kind, a_dir, b_dir = find_layout(source)
    if kind == "sidebyside":
        files = _images(a_dir, "side-by-side AB images")[:limit]
        originals = []
        for path in files:
            h, w = _header_size(path)
            if w % 2:
                raise GanforgeError(f"{path}: a side-by-side AB image needs an even width, got {w} "
                                    "(or use A/ and B/ folders with matching names)")
            originals.append((h, w // 2))
        files_a, files_b, originals_b = files, files, originals
        names = [str(path.relative_to(a_dir)) for path in files]
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
        names = sorted(named_a)[:limit]
        files_a, files_b = [named_a[k] for k in names], [named_b[k] for k in names]
        originals = []
        for key, path_a, path_b in zip(names, files_a, files_b):
            (ha, wa), (hb, wb) = _header_size(path_a), _header_size(path_b)
            if abs(ha * wb - hb * wa) > 0.02 * ha * wb:
                raise GanforgeError(f"--data {source}: '{key}' is {wa}x{ha} in {a_dir.name}/ but {wb}x{hb} in "
                                    f"{b_dir.name}/ (a pair must show the same framing)")
            originals.append((ha, wa))
        originals_b = originals  # B is resized to its A's size first
        kind = "folders"
    chans = _channels(files_a if kind == "sidebyside" else files_a + files_b, channels)
    resolution = resolution or crop_resolution([min(hw) for hw in originals])
    load_size = load_size or (None if native else default_load_size(resolution))
    return PairFiles(kind, files_a, files_b, names, chans, originals, originals_b, resolution, load_size, source)


def unpaired_files(source: str, resolution: int | None, channels: int | None = None, load_size: int | None = None,
                   limit: int | None = None) -> PairFiles:
    """Two unaligned domains from trainA/ + trainB/ (or any paired layout, its pairing ignored), from the file
    headers alone; `resolution` None picks the crop from the images (crop_resolution)."""
    kind, a_dir, b_dir = find_layout(source)
    if kind == "sidebyside":
        files = paired_files(source, resolution, channels, load_size, limit)
        files.paired = False
        return files
    files_a = _images(a_dir, "domain A")[:limit]
    files_b = _images(b_dir, "domain B")[:limit]
    chans = _channels(files_a + files_b, channels)
    originals_a, originals_b = [_header_size(p) for p in files_a], [_header_size(p) for p in files_b]
    resolution = resolution or crop_resolution([min(hw) for hw in originals_a + originals_b])
    load_size = load_size or default_load_size(resolution)
    names = [str(p.relative_to(a_dir)) for p in files_a]
    return PairFiles("unpaired", files_a, files_b, names, chans, originals_a, originals_b, resolution, load_size,
                     source)


def load_paired(source: str, resolution: int | None, channels: int | None = None, load_size: int | None = None,
                limit: int | None = None, native: bool = False) -> "PairedImages":
    """Aligned (A, B) image pairs (see `paired_files`), decoded into memory."""
    return paired_files(source, resolution, channels, load_size, limit, native).in_memory()


def load_unpaired(source: str, resolution: int | None, channels: int | None = None, load_size: int | None = None,
                  limit: int | None = None) -> "PairedImages":
    """Two unaligned domains (see `unpaired_files`), decoded into memory."""
    return unpaired_files(source, resolution, channels, load_size, limit).in_memory()


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


def plan_crops(index: list[int], seed: int, sizes_a: list[tuple[int, int]], sizes_b: list[tuple[int, int]],
               resolution: int, flip: bool, paired: bool) -> list[tuple[int, tuple, int, tuple]]:
    """Each item of a batch as (i, place in A, j, place in B), a place being (top, left, flipped): crops, flips
    and unpaired partners j drawn from a generator seeded by the batch's `seed`, from the held sizes alone (so a
    streaming worker draws the same as the in-memory path without decoding other items)."""
    rng = torch.Generator().manual_seed(seed)
    plan = []
    for i in index:
        where = draw_place(sizes_a[i], resolution, flip, rng)
        if paired:
            plan.append((i, where, i, where))
        else:
            j = int(torch.randint(0, len(sizes_b), (1,), generator=rng))
            plan.append((i, where, j, draw_place(sizes_b[j], resolution, flip, rng)))
    return plan


def draw_place(size: tuple[int, int], resolution: int, flip: bool, rng: torch.Generator) -> tuple[int, int, bool]:
    """(top, left, flipped) of a random `resolution` crop of an image of `size` (h, w), drawn from `rng`."""
    top = int(torch.randint(0, size[0] - resolution + 1, (1,), generator=rng))
    left = int(torch.randint(0, size[1] - resolution + 1, (1,), generator=rng))
    return top, left, flip and bool(torch.rand((), generator=rng) < 0.5)


def cut(image: torch.Tensor, where: tuple[int, int, bool], resolution: int) -> torch.Tensor:
    """The crop `where` = (top, left, flipped) of `image` at `resolution`."""
    top, left, flipped = where
    crop = image[:, top:top + resolution, left:left + resolution]
    return crop.flip(-1) if flipped else crop


class PairedBatches(ShuffledEpochs):
    """Shuffled epochs over domain A; B is the aligned partner (paired) or a random B image (unpaired).

    Crops, flips and unpaired partners are drawn from a generator seeded by the epoch's seed and the position in
    it (`plan_crops`), so the state (RNG at the epoch start, offset) reproduces exactly the batches an
    uninterrupted run sees.
    """

    def __init__(self, data: PairedImages, batch_size: int, device: torch.device, seed: int, flip: bool = False):
        if batch_size > len(data):
            raise GanforgeError(f"train.batch_size {batch_size} is larger than the data set ({len(data)} images)")
        self.data = data
        self.a = [image.to(device) for image in data.a]
        self.b = [image.to(device) for image in data.b]
        self.sizes_a = [tuple(image.shape[-2:]) for image in data.a]
        self.sizes_b = [tuple(image.shape[-2:]) for image in data.b]
        self.flip, self.device = flip, device
        super().__init__(len(self.a), batch_size, seed)

    def _place(self, image: torch.Tensor, rng: torch.Generator) -> tuple[int, int, bool]:
        """(top, left, flipped) of a random training crop of `image`, drawn from `rng`."""
        return draw_place(tuple(image.shape[-2:]), self.data.resolution, self.flip, rng)

    def next(self) -> dict[str, torch.Tensor]:
        index, seed = self.take()
        r = self.data.resolution
        plan = plan_crops(index.tolist(), seed, self.sizes_a, self.sizes_b, r, self.flip, self.data.paired)
        crops_a = [cut(self.a[i], where_a, r) for i, where_a, _, _ in plan]
        crops_b = [cut(self.b[j], where_b, r) for _, _, j, where_b in plan]
        return {"a": from_uint8(torch.stack(crops_a)), "b": from_uint8(torch.stack(crops_b))}
