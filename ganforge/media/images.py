"""Image samples: PNG/JPEG grids (capped in size, with a nearest-neighbour zoom), a folder of PNGs, `.npz`; and
single pictures in and out for commands that map files to files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.media.batches import Images, from_uint8, to_uint8
from ganforge.media.files import save_npz, writing

MAX_CELLS = 64  # a grid shows at most this many samples...
MAX_SIDE = 4096  # ...and is at most this many pixels wide and high (before a zoom that still fits)
PADDING = 2


def grid(levels: torch.Tensor, nrow: int | None = None, zoom: int = 1) -> tuple[torch.Tensor, int]:
    """uint8 pictures (N, C, H, W) tiled into one (C, H', W') picture with black 2-px gaps, `nrow` per row (default:
    a roughly square picture), enlarged `zoom` times by nearest neighbour; returns it and the number shown."""
    n, channels, height, width = levels.shape
    if n == 1:
        picture, shown = levels[0], 1
    else:
        cols = nrow or max(1, math.ceil(math.sqrt(n * height / width)))
        cols = max(1, min(cols, n, (MAX_SIDE - PADDING) // (width + PADDING)))
        rows_fit = max(1, (MAX_SIDE - PADDING) // (height + PADDING))
        shown = min(n, MAX_CELLS, cols * rows_fit)
        rows = math.ceil(shown / cols)
        picture = levels.new_zeros(channels, rows * (height + PADDING) + PADDING, cols * (width + PADDING) + PADDING)
        for index in range(shown):
            top, left = (index // cols) * (height + PADDING) + PADDING, (index % cols) * (width + PADDING) + PADDING
            picture[:, top:top + height, left:left + width] = levels[index]
    zoom = max(1, min(int(zoom), MAX_SIDE // max(picture.shape[-2:])))
    if zoom > 1:
        picture = picture.repeat_interleave(zoom, -2).repeat_interleave(zoom, -1)
    return picture, shown


def to_picture(levels: torch.Tensor):
    """uint8 (C, H, W) with 1, 3 or 4 channels as a PIL image."""
    from PIL import Image

    array = levels.permute(1, 2, 0).cpu().numpy()
    if array.shape[-1] not in (1, 3, 4):
        raise GanforgeError(f"cannot save {array.shape[-1]}-channel images as pictures (1, 3 or 4 channels)")
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def from_picture(picture) -> torch.Tensor:
    """A PIL image ('L' or 'RGB') as float (1, C, H, W) in [-1, 1]."""
    array = np.asarray(picture, dtype=np.uint8)
    levels = torch.from_numpy(array.copy())
    levels = levels[None] if levels.ndim == 2 else levels.permute(2, 0, 1)
    return from_uint8(levels)[None]


def save_picture(levels: torch.Tensor, path: Path) -> None:
    """Write uint8 (C, H, W) as one picture file, its format from the suffix (JPEG at quality 95)."""
    picture = to_picture(levels)
    with writing(path):
        try:
            picture.save(path, **({"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {}))
        except (KeyError, ValueError) as error:  # PIL: unknown suffix, or a mode the format cannot hold
            raise GanforgeError(f"cannot write {path}: {error}") from None


def write_image(image: torch.Tensor, path: str | Path) -> None:
    """One image (C, H, W) or (1, C, H, W) in [-1, 1] as a picture file."""
    save_picture(to_uint8(image.reshape(image.shape[-3:])), Path(path))


def write_grid(samples: Images, path: Path, zoom: int = 1, nrow: int | None = None, **_) -> str:
    picture, shown = grid(to_uint8(samples.tensor), nrow, zoom)
    save_picture(picture, path)
    note = f"; the first {shown} of {len(samples)} (write a folder or .npz for all)" if shown < len(samples) else ""
    return f"a grid of {shown} images, {picture.shape[-1]}x{picture.shape[-2]} px{note}"


def write_folder(samples: Images, path: Path, progress: bool = False, **_) -> str:
    from ganforge.media.progress import track

    levels = to_uint8(samples.tensor)
    with writing(path, folder=True):
        for i in track(range(len(levels)), "writing", enabled=progress):
            save_picture(levels[i], path / f"{i:05d}.png")
    return f"{len(samples)} PNG files"


def write_npz(samples: Images, path: Path, **_) -> str:
    arrays = {"images": to_uint8(samples.tensor).permute(0, 2, 3, 1).numpy()}
    save_npz(path, arrays, samples.labels)
    return f"{len(samples)} images as uint8 (N, H, W, C)"
