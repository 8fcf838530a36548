"""Super-resolution training data: high-resolution images in memory (large folders stream: sr_stream.py), random
crops degraded on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganforge.data.degrade import Degradation, degrade
from ganforge.data.batches import ShuffledEpochs
from ganforge.data.image_files import list_images, read_image, warn_skipped
from ganforge.data.sources import load_images
from ganforge.errors import GanforgeError
from ganforge.media import from_uint8

# scikit-image's bundled photographs (no download): a built-in high-resolution source for demos
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
SKIMAGE_GREY = ("camera", "moon", "coins", "page", "text", "clock")


def _from_array(array: np.ndarray) -> torch.Tensor:
    tensor = torch.from_numpy(np.array(array, dtype=np.uint8))
    return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()


def _set_channels(image: torch.Tensor, channels: int) -> torch.Tensor:
    if image.shape[0] == channels:
        return image
    if channels == 3:
        return image.expand(3, -1, -1).contiguous()
    weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    return (image.float() * weights).sum(0, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def skimage_photos(channels: int | None = None) -> tuple[list[torch.Tensor], list[str]]:
    """scikit-image's bundled photos as uint8 (C, H, W): the RGB ones, or the grey ones when channels == 1."""
    try:
        import skimage.data
    except ImportError:
        raise GanforgeError("the 'skimage' image source needs scikit-image: pip install 'ganforge[sr]'") from None

    names = SKIMAGE_GREY if channels == 1 else SKIMAGE_PHOTOS
    return [_from_array(getattr(skimage.data, name)()) for name in names], list(names)


def load_hr_images(source: str, crop: int, channels: int | None = None, root: str | None = None,
                   limit: int | None = None) -> tuple[list[torch.Tensor], list[str], str]:
    """High-resolution uint8 images (C, H, W) of any size from a folder, 'skimage', or a ganforge data source.

    Returns the images, their names and the channel-set name; images smaller than `crop` are refused by name.
    """
    path = Path(source).expanduser()
    if source.lower() == "skimage":
        images, names = skimage_photos(channels)
    elif path.is_dir():
        files = list_images(path)
        if not files:
            raise GanforgeError(f"--data {source}: no image files found")
        if limit is not None:
            files = files[:limit]
        mode = {1: "L", 3: "RGB", None: "RGB"}[channels]
        images, names, bad = [], [], []
        for file in files:
            name = str(file.relative_to(path))
            try:
                images.append(_from_array(np.asarray(read_image(file, mode, name=name))))
                names.append(name)
            except GanforgeError as error:
                bad.append(str(error))
        if not images:
            raise GanforgeError(f"--data {source}: all {len(bad)} image files are unreadable or corrupt "
                                f"(first: {bad[0]})")
        warn_skipped(path, len(bad), bad[0] if bad else "")
    else:
        data = load_images(source, crop, channels, root, limit)
        images, names = list(data.images), [f"{i:06d}" for i in range(len(data))]
    if limit is not None:
        images, names = images[:limit], names[:limit]
    channels = channels or (3 if any(im.shape[0] == 3 for im in images) else 1)
    images = [_set_channels(im, channels) for im in images]
    small = [n for n, im in zip(names, images) if min(im.shape[-2:]) < crop]
    if small:
        raise GanforgeError(f"--data {source}: {len(small)} image(s) smaller than the {crop}-px crop (first: "
                            f"{small[0]}); lower --resolution or remove them")
    return images, names, source


def plan_hr_crops(index: list[int], rng: torch.Generator, sizes: list[tuple[int, int]], crop: int,
                  flip: bool) -> list[tuple[int, tuple[int, int, bool]]]:
    """(i, (top, left, flipped)) of each item's crop, drawn from `rng` from the image sizes alone."""
    plan = []
    for i in index:
        h, w = sizes[i]
        top = int(torch.randint(0, h - crop + 1, (), generator=rng))
        left = int(torch.randint(0, w - crop + 1, (), generator=rng))
        plan.append((i, (top, left, flip and bool(torch.rand((), generator=rng) < 0.5))))
    return plan


def cut_hr(image: torch.Tensor, where: tuple[int, int, bool], crop: int) -> torch.Tensor:
    top, left, flipped = where
    top, left = min(top, image.shape[-2] - crop), min(left, image.shape[-1] - crop)  # a replacement of another size
    patch = image[:, top:top + crop, left:left + crop]
    return patch.flip(-1) if flipped else patch


class SuperResolutionImages:
    """High-resolution images (any sizes) and how to make (low-res, high-res) training pairs from them."""

    labels = None  # no class labels

    def __init__(self, images: list[torch.Tensor], crop: int, degradation: Degradation, name: str = "",
                 names: list[str] | None = None):
        degradation.check()
        if crop % degradation.scale:
            raise GanforgeError(f"data.resolution {crop} is not a multiple of the scale {degradation.scale}")
        self.images, self.crop, self.degradation, self.name = images, crop, degradation, name
        self.names = names or [f"{i:06d}" for i in range(len(images))]
        self.classes = []

    @classmethod
    def from_source(cls, source: str, crop: int, degradation: Degradation, channels: int | None = None,
                    root: str | None = None, limit: int | None = None) -> "SuperResolutionImages":
        images, names, name = load_hr_images(source, crop, channels, root, limit)
        return cls(images, crop, degradation, name, names)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def channels(self) -> int:
        return self.images[0].shape[0]

    @property
    def scale(self) -> int:
        return self.degradation.scale

    def sizes(self) -> list[tuple[int, int]]:
        return [tuple(image.shape[-2:]) for image in self.images]

    def crops(self, index: torch.Tensor, rng: torch.Generator, flip: bool = False) -> torch.Tensor:
        """uint8 random crops (N, C, crop, crop) of the images at `index`, positions (and flips) drawn from `rng`."""
        plan = plan_hr_crops(index.tolist(), rng, self.sizes(), self.crop, flip)
        return torch.stack([cut_hr(self.images[i], where, self.crop) for i, where in plan])

    def pairs(self, hr: torch.Tensor, rng: torch.Generator) -> dict[str, torch.Tensor]:
        """{"lr", "hr"} in [-1, 1] from uint8 HR crops, degraded with randomness from `rng`."""
        hr = hr.float().div(255)
        lr = degrade(hr, self.degradation, rng)
        return {"lr": lr.mul(2).sub(1), "hr": hr.mul(2).sub(1)}

    def fixed_pairs(self, n: int, rng: torch.Generator) -> dict[str, torch.Tensor]:
        """`n` pairs from crops cycling through the images, all randomness from `rng` (for sample grids)."""
        index = torch.arange(n) % len(self)
        return self.pairs(self.crops(index, rng), rng)

    def as_float(self) -> torch.Tensor:
        """Centre crops of every image at the crop size, float in [-1, 1]."""
        out = []
        for image in self.images:
            h, w = image.shape[-2:]
            top, left = (h - self.crop) // 2, (w - self.crop) // 2
            out.append(image[:, top:top + self.crop, left:left + self.crop])
        return from_uint8(torch.stack(out))

    def batches(self, batch_size: int, device: torch.device, seed: int, flip: bool = False) -> "PairBatches":
        """Endless batches {"lr", "hr"} on `device`."""
        return PairBatches(self, batch_size, device, seed, flip)


class PairBatches(ShuffledEpochs):
    """Shuffled passes over the images; each batch draws its crops and degradations from its own seeded RNG.

    The state (shuffling RNG at the start of the pass, offset in it) is saved in checkpoints, and a batch's RNG
    is derived from the pass's seed and the offset, so a resumed run sees exactly the same batches.
    """

    def __init__(self, data: SuperResolutionImages, batch_size: int, device: torch.device, seed: int,
                 flip: bool = False):
        self.data, self.device, self.flip = data, device, flip
        # a pass visits each image at least once and holds at least one batch (few large photos, many crops)
        super().__init__(len(data), batch_size, seed, repeats=-(-batch_size // len(data)))

    def next(self) -> dict[str, torch.Tensor]:
        index, seed = self.take()
        rng = torch.Generator().manual_seed(seed)
        pairs = self.data.pairs(self.data.crops(index, rng, self.flip), rng)
        return {k: v.to(self.device, non_blocking=True) for k, v in pairs.items()}

