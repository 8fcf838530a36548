"""Read image folders (or .tar archives of them) into float tensors in [-1, 1] at one common resolution."""
from __future__ import annotations

import io
import tarfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ganforge.data.image_files import IMAGE_SUFFIXES, is_image_file, list_images, read_image
from ganforge.errors import GanforgeError
from ganforge.media import from_uint8

RESIZE_FILTER = "PIL.BICUBIC"


@dataclass
class ImageSet:
    """Images in [-1, 1] (N,C,H,W), labels from sub-folder names (-1 when unlabelled), and how they were read."""

    images: Tensor
    labels: Tensor
    classes: list[str]
    image_format: str


def _members(source: Path) -> list[tuple[str, object]]:
    """(relative name, opener) for every image file in a folder or tar archive, sorted by name."""
    if source.is_dir():
        return [(p.relative_to(source).as_posix(), p) for p in list_images(source)]
    if source.is_file() and tarfile.is_tarfile(source):
        with tarfile.open(source) as tar:
            found = sorted((m.name, tar.extractfile(m).read()) for m in tar.getmembers()
                           if m.isfile() and is_image_file(m.name))
        return [(name, io.BytesIO(data)) for name, data in found]
    raise GanforgeError(f"{source} is neither an image folder nor a .tar of images")


def _strip_common_root(names: list[str]) -> list[str]:
    """Drop a single leading folder shared by all names (e.g. 'test/' in a tar) so classes are the next level."""
    parts = [n.split("/") for n in names]
    while all(len(p) > 2 for p in parts) and len({p[0] for p in parts}) == 1:
        parts = [p[1:] for p in parts]
    return ["/".join(p) for p in parts]


def load_images(source: str | Path, size: int | None = None, mode: str | None = None,
                limit: int | None = None) -> ImageSet:
    """Load the images under SOURCE (at most LIMIT, evenly spaced in path order), resized (bicubic) to SIZE x SIZE.

    SIZE defaults to the most common short side; MODE ('L' or 'RGB') to grey when every file is grey.
    """
    source = Path(source).expanduser()
    if not source.exists():
        raise GanforgeError(f"image source {source} does not exist")
    members = _members(source)
    if limit is not None and len(members) > limit:
        members = members[::len(members) // limit][:limit]  # every k-th file, so all classes stay represented
    if not members:
        raise GanforgeError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in {source}")
    pictures, bad = [], []
    for name, opener in members:
        try:
            pictures.append(read_image(opener, mode, name=name))  # mode None: 'L' for grey files, else 'RGB'
        except GanforgeError as error:
            bad.append(str(error))
    if bad:
        raise GanforgeError(f"{len(bad)} unreadable image(s) in {source}, first: {bad[0]}")
    if mode is None:
        mode = "L" if all(p.mode == "L" for p in pictures) else "RGB"
    if size is None:
        size = Counter(min(p.size) for p in pictures).most_common(1)[0][0]
    arrays = [np.asarray(_square(p.convert(mode), size), dtype=np.uint8) for p in pictures]
    data = torch.from_numpy(np.stack(arrays))
    data = data.unsqueeze(1) if data.dim() == 3 else data.permute(0, 3, 1, 2)
    images = from_uint8(data)
    names = _strip_common_root([name for name, _ in members])
    folders = [n.rsplit("/", 1)[0] if "/" in n else "" for n in names]
    classes = sorted(set(folders)) if all(folders) else []
    labels = torch.tensor([classes.index(f) for f in folders]) if classes else torch.full((len(names),), -1)
    suffixes = ",".join(sorted({Path(n).suffix.lower().lstrip(".") for n in names}))
    return ImageSet(images, labels, classes, f"{suffixes}:{mode}->{RESIZE_FILTER}@{size}")


def _square(picture: Image.Image, size: int) -> Image.Image:
    """Centre-crop to a square, then resize to size x size (bicubic); no-op for images already that size."""
    w, h = picture.size
    if w != h:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        picture = picture.crop((left, top, left + side, top + side))
    return picture if picture.size == (size, size) else picture.resize((size, size), Image.BICUBIC)
