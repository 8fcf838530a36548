"""Record readers of the streaming source: one decoded, resized uint8 image per index from a folder, WebDataset-style
.tar shards or a memory-mapped .npy array, read in DataLoader worker processes (ganforge.data.stream)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ganforge.data.image_files import read_image
from ganforge.data.sources import _fit
from ganforge.errors import GanforgeError

MAX_WARNINGS = 5  # unreadable files named per process


class Substitutes:
    """Reading with replacement: `readable` reads an item, or the next readable one when a file is broken (named
    on stderr, the first MAX_WARNINGS), so a corrupt file deep in a large set cannot stop a long run. Counts what it
    decoded (bounded by the batches drawn, never the whole set)."""

    decoded = 0
    _warned = 0

    def readable(self, read, index: int, count: int, what: str):
        """read(index), or read() of the next item (cyclically) that can be read."""
        for attempt in range(count):
            try:
                item = read((index + attempt) % count)
            except GanforgeError as error:
                if self._warned < MAX_WARNINGS:
                    self._warned += 1
                    print(f"warning: {error}; using the next image instead", file=sys.stderr)
                continue
            self.decoded += 1
            return item
        raise GanforgeError(f"none of the {count} {what} can be read")


class Records(Substitutes, Dataset):
    """Item i of a data set decoded to uint8 (C, R, R) at the model resolution, in the process that asks for it
    (a DataLoader worker). Subclasses `read` one raw picture; an unreadable one is replaced by the next readable
    item (and named on stderr)."""

    def __init__(self, count: int, resolution: int, channels: int):
        self.count, self.resolution, self.channels = count, resolution, channels

    def __len__(self) -> int:
        return self.count

    def read(self, index: int) -> torch.Tensor:
        """The raw picture of item `index` as uint8 (C, H, W); GanforgeError when unreadable."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        picture = self.readable(self.read, index, self.count, "images")
        return _fit(picture.unsqueeze(0), self.resolution, self.channels)[0], index


def _picture_tensor(picture) -> torch.Tensor:
    array = torch.from_numpy(np.asarray(picture, dtype=np.uint8).copy())
    return array.unsqueeze(0) if array.ndim == 2 else array.permute(2, 0, 1)


def _mode(channels: int) -> str:
    return {1: "L", 3: "RGB", 4: "RGBA"}[channels]


class FileRecords(Records):
    """Image files below a folder (read with the one image reader)."""

    def __init__(self, root: Path, files: list[Path], resolution: int, channels: int):
        super().__init__(len(files), resolution, channels)
        self.root, self.files = str(root), [str(p.relative_to(root)) for p in files]

    def read(self, index: int) -> torch.Tensor:
        name = self.files[index]
        return _picture_tensor(read_image(Path(self.root) / name, _mode(self.channels), name=name))


class TarRecords(Records):
    """Image members of uncompressed .tar shards, each read at its byte offset (no unpacking)."""

    def __init__(self, shards: list[Path], members: list[tuple[int, int, int, str]], resolution: int, channels: int):
        super().__init__(len(members), resolution, channels)
        self.shards = [str(s) for s in shards]
        self.shard_of = np.array([m[0] for m in members], dtype=np.int32)
        self.offset = np.array([m[1] for m in members], dtype=np.int64)
        self.size = np.array([m[2] for m in members], dtype=np.int64)
        self.names = [m[3] for m in members]
        self._handles: dict[int, io.BufferedReader] = {}

    def __getstate__(self) -> dict:  # open files stay with their process
        return self.__dict__ | {"_handles": {}}

    def _where(self, index: int) -> str:
        return f"{self.shards[int(self.shard_of[index])]}:{self.names[index]}"

    def raw(self, index: int) -> bytes:
        """The encoded bytes of item `index`, read at its offset in its shard."""
        shard = int(self.shard_of[index])
        try:
            handle = self._handles.get(shard) or self._handles.setdefault(shard, open(self.shards[shard], "rb"))
            handle.seek(int(self.offset[index]))
            return handle.read(int(self.size[index]))
        except OSError as error:
            raise GanforgeError(f"{self._where(index)}: cannot read ({error.strerror or error})") from None

    def read(self, index: int) -> torch.Tensor:
        return _picture_tensor(read_image(io.BytesIO(self.raw(index)), _mode(self.channels), name=self._where(index)))


class ArrayRecords(Records):
    """Rows of a .npy array, memory-mapped (only the rows drawn are read from disk)."""

    def __init__(self, path: Path, layout: str, value_range: tuple[float, float] | None, resolution: int,
                 channels: int, count: int, keep_alpha: bool):
        super().__init__(count, resolution, channels)
        self.path, self.layout, self.value_range, self.keep_alpha = str(path), layout, value_range, keep_alpha
        self._array = None

    def __getstate__(self) -> dict:
        return self.__dict__ | {"_array": None}

    def read(self, index: int) -> torch.Tensor:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        row = np.asarray(self._array[index])
        row = row[None] if self.layout == "nhw" else row.transpose(2, 0, 1) if self.layout == "nhwc" else row
        if row.shape[0] == 4 and not self.keep_alpha:
            row = row[:3]
        return torch.from_numpy(np.ascontiguousarray(_to_uint8(row, self.value_range)))


def _to_uint8(values: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    """Pixels as uint8, scaled as `pixels_to_uint8` scales a whole array whose range is `value_range`."""
    if value_range is None:
        return values
    low, high = value_range
    values = values.astype(np.float64)
    if low >= -1.0 and high <= 1.0:
        values = (values + 1.0) * 127.5 if low < 0 else values * 255.0
    return np.clip(np.round(values), 0, 255).astype(np.uint8)
