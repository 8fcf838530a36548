"""Image sources: bundled digits, torchvision data sets, image folders and arrays, all as one uint8 tensor."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.data.image_files import (IMAGE_SUFFIXES, is_grey_mode, list_images, read_image, pixels_to_uint8,
                                       warn_skipped)
from ganforge.errors import GanforgeError
from ganforge.media import from_uint8

TORCHVISION_SETS = {"mnist", "fashion-mnist", "cifar10", "celeba"}


@dataclass
class ImageSet:
    """Images as one uint8 tensor (N, C, H, W) at the model resolution, with optional integer labels."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    classes: list[str] = field(default_factory=list)
    name: str = ""
    skipped: int = 0  # unreadable files left out

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def resolution(self) -> int:
        return self.images.shape[-1]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    def batches(self, batch_size: int, device: torch.device, seed: int, flip: bool = False):
        """Endless shuffled training batches {"image", "label"} on `device`."""
        from ganforge.data.batches import TensorBatches

        return TensorBatches(self, batch_size, device, seed, flip)

    def as_float(self) -> torch.Tensor:
        """All images as float32 in [-1, 1]."""
        return from_uint8(self.images)




def default_cache() -> Path:
    return Path(os.environ.get("GANFORGE_CACHE", Path.home() / ".cache" / "ganforge"))


def auto_resolution(height: int, width: int) -> int:
    """The model resolution used when none is given: the power of two at or above the images' shorter side,
    at least 16 (so 8 px digits get 16) and at most 64 (a CPU-friendly default for photos)."""
    side = min(height, width)
    return int(min(64, max(16, 2 ** math.ceil(math.log2(max(side, 1))))))


def load_images(source: str, resolution: int | None, channels: int | None = None, root: str | None = None,
                limit: int | None = None) -> ImageSet:
    """Load `source` (a known data set name, a folder or a .npy/.npz file) resized and cropped to `resolution`
    (None: `auto_resolution` of the data)."""
    key = source.lower()
    if key == "digits":
        arrays, labels, classes = _digits()
    elif key in TORCHVISION_SETS:
        arrays, labels, classes = _torchvision(key, root, limit)
    else:
        path = Path(source).expanduser()
        if not path.exists():
            known = ", ".join(["digits", *sorted(TORCHVISION_SETS)])
            raise GanforgeError(f"--data {source}: no such file or folder, and not a known data set ({known})")
        if path.is_dir():
            return _folder(path, resolution, channels, limit)
        if path.suffix.lower() in (".npy", ".npz"):
            arrays, labels, classes = _array(path)
        else:
            raise GanforgeError(f"--data {source}: expected a folder of images or a .npy/.npz array, got a {path.suffix or 'plain'} file")
    if limit is not None:
        arrays = arrays[:limit]
        labels = None if labels is None else labels[:limit]
    if resolution is None:
        resolution = auto_resolution(*arrays.shape[-2:])
    images = _fit(arrays, resolution, channels)
    return ImageSet(images, labels, classes, name=source)


def _fit(images: torch.Tensor, resolution: int, channels: int | None) -> torch.Tensor:
    """Resize (shorter side, antialiased) and centre-crop uint8 (N, C, H, W) images; set the channel count."""
    if channels is not None and images.shape[1] != channels:
        images = images.expand(-1, 3, -1, -1) if channels == 3 else _to_grey(images)
    h, w = images.shape[-2:]
    if (h, w) == (resolution, resolution):
        return images.contiguous()
    scale = resolution / min(h, w)
    size = (max(resolution, round(h * scale)), max(resolution, round(w * scale)))
    out = []
    for chunk in images.split(1024):
        resized = F.interpolate(chunk.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
        top, left = (size[0] - resolution) // 2, (size[1] - resolution) // 2
        resized = resized[..., top:top + resolution, left:left + resolution]
        out.append(resized.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out).contiguous()


def _to_grey(images: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def _digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images * (255.0 / 16.0)).round().to(torch.uint8).unsqueeze(1)
    return images, torch.from_numpy(bunch.target).long(), [str(c) for c in range(10)]


def _torchvision(key: str, root: str | None, limit: int | None):
    import torchvision.datasets as tv

    folder = Path(root).expanduser() if root else default_cache() / "datasets"
    makers = {
        "mnist": lambda d: tv.MNIST(folder, train=True, download=d),
        "fashion-mnist": lambda d: tv.FashionMNIST(folder, train=True, download=d),
        "cifar10": lambda d: tv.CIFAR10(folder, train=True, download=d),
        "celeba": lambda d: tv.CelebA(folder, split="train", download=d),
    }
    try:
        dataset = makers[key](False)
    except (RuntimeError, FileNotFoundError):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            dataset = makers[key](True)
        except Exception as error:  # torchvision raises URLError, RuntimeError, OSError... when offline
            raise GanforgeError(
                f"--data {key}: not found in {folder} and the download failed ({type(error).__name__}; offline?). "
                f"Put the files there, pass --data-root DIR, or use a local image folder with --data PATH"
            ) from None
    data = getattr(dataset, "data", None)
    if data is not None and key != "celeba":
        array = torch.as_tensor(np.asarray(data))
        images = array.unsqueeze(1) if array.ndim == 3 else array.permute(0, 3, 1, 2)
        labels = torch.as_tensor(np.asarray(dataset.targets)).long()
        return images.to(torch.uint8), labels, list(getattr(dataset, "classes", []))
    count = len(dataset) if limit is None else min(limit, len(dataset))
    pictures = [np.asarray(dataset[i][0].convert("RGB")) for i in range(count)]
    return torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2), None, []


def _array(path: Path):
    where = f"--data {path}"
    try:
        loaded = np.load(path, allow_pickle=False)
        labels = None
        if isinstance(loaded, np.lib.npyio.NpzFile):
            keys = list(loaded.keys())
            image_key = next((k for k in ("images", "x", "arr_0") if k in keys), None)
            if image_key is None:
                raise GanforgeError(f"{where}: expected an 'images' (or 'x') array, found keys {keys}")
            array = loaded[image_key]
            label_key = next((k for k in ("labels", "y") if k in keys), None)
            labels = None if label_key is None else _labels(loaded[label_key], f"{where} ({label_key})")
        else:
            array = loaded
    except GanforgeError:
        raise
    except Exception as error:  # object arrays (never unpickled), truncated files, bad zip members...
        raise GanforgeError(f"{where}: cannot read the array ({str(error).splitlines()[0]})") from None
    if array.dtype.kind not in "biuf":
        raise GanforgeError(f"{where}: pixel values must be numbers, got dtype {array.dtype}")
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4:
        raise GanforgeError(f"{where}: expected images shaped (N, H, W), (N, H, W, C) or (N, C, H, W), got {array.shape}")
    if array.shape[1] not in (1, 3, 4) and array.shape[-1] in (1, 3, 4):
        array = array.transpose(0, 3, 1, 2)
    if array.shape[1] == 4:
        array = array[:, :3]
    if array.shape[1] not in (1, 3):
        raise GanforgeError(f"{where}: expected 1, 3 or 4 channels, got shape {array.shape}")
    if 0 in array.shape:
        raise GanforgeError(f"{where}: no pixels in an array of shape {array.shape}")
    array = pixels_to_uint8(array, where)
    if labels is not None and len(labels) != len(array):
        raise GanforgeError(f"{where}: {len(array)} images but {len(labels)} labels")
    classes = [str(c) for c in range(int(labels.max()) + 1)] if labels is not None and len(labels) else []
    return torch.from_numpy(np.ascontiguousarray(array)), labels, classes


def _labels(array: np.ndarray, where: str) -> torch.Tensor:
    """Class labels as int64: one non-negative whole number per image."""
    if array.ndim != 1 or array.dtype.kind not in "biuf":
        raise GanforgeError(f"{where}: labels must be one number per image, got dtype {array.dtype} shape {array.shape}")
    if array.dtype.kind == "f" and not (np.isfinite(array).all() and (array == np.round(array)).all()):
        raise GanforgeError(f"{where}: labels must be whole numbers")
    if array.size and array.min() < 0:
        raise GanforgeError(f"{where}: labels must be 0 or more, got {array.min()}")
    return torch.from_numpy(array.astype(np.int64))


def _is_grey(path: Path) -> bool:
    from PIL import Image

    with Image.open(path) as image:
        return is_grey_mode(image.mode)


def _folder(folder: Path, resolution: int | None, channels: int | None, limit: int | None) -> ImageSet:
    files = list_images(folder)
    if not files:
        raise GanforgeError(f"--data {folder}: no image files found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    class_names = sorted({p.relative_to(folder).parts[0] for p in files if len(p.relative_to(folder).parts) > 1})
    if channels is None:
        channels = 1 if all(_is_grey(p) for p in files[:200] if _readable(p)) else 3
    mode = "L" if channels == 1 else "RGB"
    if resolution is None:
        sizes = sorted(min(_size(p)) for p in files[:200] if _readable(p))
        resolution = auto_resolution(sizes[len(sizes) // 2], sizes[len(sizes) // 2]) if sizes else 64
    images, labels, skipped, first_error = [], [], 0, ""
    for path in files:
        if limit is not None and len(images) >= limit:
            break
        try:
            picture = read_image(path, mode, name=str(path.relative_to(folder)))
        except GanforgeError as error:
            skipped += 1
            first_error = first_error or str(error)
            continue
        array = torch.from_numpy(np.asarray(picture, dtype=np.uint8).copy())
        array = array.unsqueeze(0) if array.ndim == 2 else array.permute(2, 0, 1)
        images.append(_fit(array.unsqueeze(0), resolution, channels))
        parts = path.relative_to(folder).parts
        labels.append(class_names.index(parts[0]) if len(parts) > 1 else -1)
    if not images:
        raise GanforgeError(f"--data {folder}: all {skipped} image files are unreadable or corrupt "
                            f"(first: {first_error})")
    warn_skipped(folder, skipped, first_error)
    label_tensor = torch.tensor(labels) if class_names and min(labels) >= 0 else None
    return ImageSet(torch.cat(images), label_tensor, class_names if label_tensor is not None else [],
                    name=str(folder), skipped=skipped)


def _size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def _readable(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
        return True
    except Exception:
        return False
