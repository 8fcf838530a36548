"""One-time preprocessing of a data set into WebDataset-style .tar shards of images already at the model resolution
(as stylegan2-ada's dataset_tool does), so that training reads small PNGs and never resizes on the fly.

Each shard holds `NNNNNNNN.png` (and `NNNNNNNN.cls`, the class index, for labelled sets); `classes.txt` next to
the shards names the classes. Decoding, resizing and PNG encoding run in DataLoader workers; unreadable files are
left out and counted. `ganforge train --data OUT` then reads the shards (streamed or in memory).
"""

from __future__ import annotations

import io
import os
import secrets
import tarfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ganforge.config import DataConfig
from ganforge.data.sources import _fit, load_images
from ganforge.data.stream import CLASSES_FILE, Records, open_source
from ganforge.errors import GanforgeError


def _png(levels: torch.Tensor) -> bytes:
    from PIL import Image

    array = levels.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else np.ascontiguousarray(array)).save(buffer, "PNG")
    return buffer.getvalue()


class _Encoded(Dataset):
    """Item i as PNG bytes at the model resolution, or the reason it cannot be read (in a worker process)."""

    def __init__(self, records: Records):
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[int, bytes | None, str]:
        try:
            picture = self.records.read(index)
        except GanforgeError as error:
            return index, None, str(error)
        return index, _png(_fit(picture.unsqueeze(0), self.records.resolution, self.records.channels)[0]), ""


class _InMemory(Dataset):
    """Items of an in-memory ImageSet (named data sets, .npz arrays) as PNG bytes."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[int, bytes | None, str]:
        return index, _png(self.images[index]), ""


def _as_list(items):
    return items


def prepare_shards(source: str, out: str | Path, resolution: int, channels: int | None = None,
                   transparent: bool = False, shard_size: int = 1000, workers: int = 2, limit: int | None = None,
                   root: str | None = None, progress: Callable[[int, int], None] | None = None) -> dict:
    """Write `source` resized to `resolution` into .tar shards of `shard_size` images in folder `out`; returns a
    summary {"images", "skipped", "shards", "classes", "first_error"}."""
    if resolution < 1 or resolution & (resolution - 1):
        raise GanforgeError(f"--resolution must be a power of two, got {resolution}")
    if shard_size < 1:
        raise GanforgeError(f"--shard-size must be at least 1, got {shard_size}")
    out = Path(out)
    if out.exists() and any(out.glob("*.tar")):
        raise GanforgeError(f"{out} already holds .tar shards; choose an empty or new folder")
    config = DataConfig(source=source, resolution=resolution, channels=channels, transparent=transparent,
                        workers=workers, limit=limit, root=root)
    path = Path(source).expanduser()
    if path.exists() and (path.is_dir() or path.suffix.lower() in (".npy", ".tar")):
        data = open_source(config)
        dataset, labels, classes = _Encoded(data.records), data.labels, data.classes
    else:  # named sets and .npz arrays are read into memory anyway
        if transparent:
            raise GanforgeError(f"--transparent: {source} has no alpha channel to keep")
        data = load_images(source, resolution, channels, root, limit)
        dataset, labels, classes = _InMemory(data.images), data.labels, data.classes
    out.mkdir(parents=True, exist_ok=True)
    loader = DataLoader(dataset, batch_size=16, num_workers=workers, collate_fn=_as_list,
                        prefetch_factor=4 if workers else None)
    written, skipped, first_error, shards = 0, 0, "", []
    tar, tmp = None, None
    try:
        for batch in loader:
            for index, png, error in batch:
                if png is None:
                    skipped, first_error = skipped + 1, first_error or error
                    continue
                if tar is None:
                    shards.append(out / f"shard-{len(shards):06d}.tar")
                    tmp = shards[-1].with_name(f".{shards[-1].name}.{secrets.token_hex(4)}")
                    tar = tarfile.open(tmp, "w")
                key = f"{written:08d}"
                _add(tar, f"{key}.png", png)
                if labels is not None:
                    _add(tar, f"{key}.cls", str(int(labels[index])).encode())
                written += 1
                if written % shard_size == 0:
                    tar.close()
                    os.replace(tmp, shards[-1])
                    tar = None
            if progress is not None:
                progress(written + skipped, len(dataset))
        if tar is not None:
            tar.close()
            os.replace(tmp, shards[-1])
            tar = None
    finally:
        if tar is not None:
            tar.close()
            tmp.unlink(missing_ok=True)
    if not written:
        raise GanforgeError(f"{source}: none of the {skipped} images can be read (first: {first_error})")
    if classes and labels is not None:
        (out / CLASSES_FILE).write_text("".join(f"{name}\n" for name in classes))
    return {"images": written, "skipped": skipped, "shards": len(shards), "classes": len(classes) if
            labels is not None else 0, "first_error": first_error}


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
