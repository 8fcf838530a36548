"""The one image-file reader: which files are images, and how any of them becomes an 8-bit 'L' or 'RGB' picture.

Training data, translate, upscale, sample/encode inputs and evaluate all read through `read_image`, so 16-bit and
float images, palettes and transparency are handled the same everywhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

import numpy as np

from ganforge.errors import GanforgeError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
GREY_MODES = {"1", "L", "LA", "La", "I", "F"}  # plus every 16-bit "I;16*" mode
ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


def is_image_file(name: str | Path) -> bool:
    """True when the name ends in one of IMAGE_SUFFIXES (any case)."""
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: Path) -> list[Path]:
    """Image files below `folder`, recursively, sorted; other files are ignored."""
    return sorted(p for p in folder.rglob("*") if is_image_file(p) and p.is_file())


def is_grey_mode(mode: str) -> bool:
    """True for PIL modes with one colour channel (bilevel, 8/16/32-bit grey, float), alpha or not."""
    return mode in GREY_MODES or mode.startswith("I;16")


def pixels_to_uint8(array: np.ndarray, where: str) -> np.ndarray:
    """Pixel values as uint8: uint8 kept, other numbers (bool included) taken as [0, 1], [-1, 1] or [0, 255];
    non-finite values and non-numeric dtypes are refused naming `where`."""
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind not in "biuf":
        raise GanforgeError(f"{where}: pixel values must be numbers, got dtype {array.dtype}")
    if array.size == 0:
        return array.astype(np.uint8)
    if array.dtype.kind == "f":
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise GanforgeError(f"{where}: {bad} non-finite value(s) (NaN or inf) of {array.size}")
    values = array.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if low >= -1.0 and high <= 1.0:
        values = (values + 1.0) * 127.5 if low < 0 else values * 255.0
    elif low < 0 or high > 255:
        raise GanforgeError(f"{where}: values must be uint8, in [0, 1], [-1, 1] or [0, 255]; got [{low:g}, {high:g}]")
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def _eight_bit(image, where: str):
    """16-bit, 32-bit integer and float pictures as 8-bit 'L' (PIL's own conversion clips them to white)."""
    from PIL import Image

    if not (image.mode.startswith("I") or image.mode == "F"):
        return image
    array = np.asarray(image)
    if image.mode == "F":
        return Image.fromarray(pixels_to_uint8(array, where), "L")
    if image.mode == "I":  # 16-bit PNGs may open as 32-bit 'I'; other 32-bit data is too ambiguous to scale
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 65535:
            raise GanforgeError(f"{where}: 32-bit integer pixel values [{low}, {high}] do not fit 16 bits; "
                                "save the image with 8 or 16 bits")
    sixteen = np.round(array.astype(np.float64) / 257.0)  # 65535 -> 255, as 16-bit PNG readers scale
    return Image.fromarray(sixteen.astype(np.uint8), "L")


def read_image(source: str | Path | IO[bytes], mode: str | None = None, name: str | None = None):
    """One image file (path or binary file object) as an 8-bit PIL image in `mode` ('L', 'RGB' or 'RGBA'; None: 'L'
    for grey files, else 'RGB'); 16-bit and float values are scaled, transparent pixels are put on white (except in
    'RGBA', which keeps the alpha channel).
    Any failure is a GanforgeError naming the file (`name`, default the path)."""
    from PIL import Image

    where = name or str(source if isinstance(source, (str, Path)) else getattr(source, "name", "image"))
    try:
        with Image.open(source) as opened:
            opened.load()
            grey = is_grey_mode(opened.mode)
            image = _eight_bit(opened, where)
            if (image.mode in ALPHA_MODES or "transparency" in image.info) and mode != "RGBA":
                rgba = image.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, rgba)
            return image.convert(mode or ("L" if grey else "RGB"))
    except GanforgeError:
        raise
    except Exception as error:  # PIL raises OSError, ValueError, SyntaxError, DecompressionBombError...
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise GanforgeError(f"{where}: cannot read the image ({reason})") from None


def warn_skipped(folder: Path | str, skipped: int, first_error: str) -> None:
    """Tell (on stderr, once per run: rank 0 only under torchrun) how many unreadable images were left out."""
    if skipped and int(os.environ.get("RANK", "0")) == 0:
        print(f"warning: skipped {skipped} unreadable image(s) in {folder} (first: {first_error})", file=sys.stderr)
