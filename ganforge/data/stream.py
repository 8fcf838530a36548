"""Image data larger than memory: folders, memory-mapped .npy arrays and WebDataset-style .tar shards read lazily
by a `torch.utils.data.DataLoader` (worker processes decode and resize, pinned memory on CUDA, prefetch).

The order of the images is the in-memory path's (`ShuffledEpochs` with the same seed) and a batch is made of the
same uint8 pixels (the same reader and resize), so streaming and in-memory training see identical batches; the
position in the epoch is a checkpoint's, so a resumed run continues mid-epoch bit-exactly. Under torchrun each
process decodes only its own slice of every global batch. `open_images` picks the in-memory path while the decoded
set fits `data.memory_budget_mb`, and streams otherwise (or when `data.stream` is on).
"""

from __future__ import annotations

import io
import os
import signal
import sys
import tarfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ganforge.data.batches import ShuffledEpochs
from ganforge.data.image_files import IMAGE_SUFFIXES, is_grey_mode, is_image_file, list_images, warn_skipped
from ganforge.data.records import ArrayRecords, FileRecords, Records, TarRecords
from ganforge.data.sources import (TORCHVISION_SETS, ImageSet, _fit, _is_grey, _readable, _size, auto_resolution,
                                   load_images)
from ganforge.errors import GanforgeError
from ganforge.media import from_uint8

LABEL_SUFFIXES = (".cls", ".label")  # WebDataset's class-index member
CLASSES_FILE = "classes.txt"  # class names, one a line, next to the shards
EVAL_IMAGES = 10_000  # real images an evaluation decodes from a streamed set (evenly spaced)


class StreamSet:
    """A data set read lazily: the same interface as the in-memory `ImageSet` (channels, classes, labels, name,
    len, batches), with labels (small) in memory and pixels on disk."""

    def __init__(self, records: Records, labels: torch.Tensor | None, classes: list[str], name: str, workers: int,
                 budget_mb: float = 4096):
        self.records, self.labels, self.classes, self.name, self.workers = records, labels, classes, name, workers
        self.budget_mb = budget_mb  # bounds what evaluation decodes at once
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.records)

    @property
    def resolution(self) -> int:
        return self.records.resolution

    @property
    def channels(self) -> int:
        return self.records.channels

    @property
    def decoded_mb(self) -> float:
        """What the whole set would take decoded at the model resolution, in MiB."""
        return len(self) * self.channels * self.resolution ** 2 / 2 ** 20

    def batches(self, batch_size: int, device: torch.device, seed: int, flip: bool = False) -> "StreamBatches":
        """Endless shuffled training batches {"image", "label"} on `device`, decoded by DataLoader workers."""
        return StreamBatches(self, batch_size, device, seed, flip)

    def decode(self, indices) -> torch.Tensor:
        """uint8 (N, C, R, R) of the items `indices`, decoded in this process."""
        return torch.stack([self.records[int(i)][0] for i in indices])

    def as_float(self) -> torch.Tensor:
        """Real images for evaluation in [-1, 1]: all of a small set, else evenly spaced ones, at most EVAL_IMAGES
        and at most what fits the memory budget as float32."""
        fits = int(self.budget_mb * 2 ** 20 // (4 * self.channels * self.resolution ** 2))
        count = max(2, min(len(self), EVAL_IMAGES, fits))
        chosen = torch.linspace(0, len(self) - 1, count).round().long().unique()
        return from_uint8(self.decode(chosen))

    def in_memory(self) -> ImageSet:
        """The whole set decoded into one tensor, unreadable items left out (the in-memory path for .tar shards
        and transparent images)."""
        images, kept, skipped, first = [], [], 0, ""
        for index in range(len(self)):
            try:
                picture = self.records.read(index)
            except GanforgeError as error:
                skipped, first = skipped + 1, first or str(error)
                continue
            images.append(_fit(picture.unsqueeze(0), self.resolution, self.channels))
            kept.append(index)
        if not images:
            raise GanforgeError(f"--data {self.name}: all {skipped} images are unreadable or corrupt (first: {first})")
        warn_skipped(self.name, skipped, first)
        labels = None if self.labels is None else self.labels[kept]
        return ImageSet(torch.cat(images), labels, self.classes, name=self.name, skipped=skipped)


def _ignore_interrupts(_: int) -> None:
    """In a worker: leave Ctrl-C to the training process, which finishes its step (drawing batches) and saves."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Plan:
    """The DataLoader's batch sampler: this process's slice of each global batch, replayed from a sampler state.
    It holds numbers only (no reference back to the batches, so dropping those frees the workers at once)."""

    def __init__(self, batches: "StreamBatches", state: dict):
        self.n, self.batch_size, self.repeats = batches.n, batches.batch_size, batches.repeats
        self.start, self.size, self.state = batches.start, batches.size, state

    def __iter__(self):
        epochs = ShuffledEpochs(self.n, self.batch_size, 0, self.repeats)
        epochs.load_state_dict(self.state)
        while True:
            index, _ = epochs.take()
            yield index[self.start:self.start + self.size].tolist()


class StreamBatches(ShuffledEpochs):
    """Shuffled epochs over a `StreamSet`: the same order, pixels and flips as `TensorBatches` for the same seed,
    with the decoding done ahead of time by DataLoader workers."""

    def __init__(self, data: StreamSet, batch_size: int, device: torch.device, seed: int, flip: bool = False):
        if batch_size > len(data):
            raise GanforgeError(f"train.batch_size {batch_size} is larger than the data set ({len(data)} images)")
        self.data, self.device, self.flip = data, torch.device(device), flip
        self.start, self.size = 0, batch_size  # this process's slice of each global batch
        self._iterator = None
        self.last_index: torch.Tensor | None = None  # the items of the latest batch (this process's slice)
        super().__init__(len(data), batch_size, seed)

    def shard(self, rank: int, size: int) -> "StreamBatches":
        """Decode only this process's `size` items of each global batch (under torchrun)."""
        self.start, self.size, self._iterator = rank * size, size, None
        return self

    def _loader(self) -> DataLoader:
        workers = self.data.workers
        return DataLoader(self.data.records, batch_sampler=_Plan(self, self.state_dict()), num_workers=workers,
                          pin_memory=self.device.type == "cuda", prefetch_factor=4 if workers else None,
                          persistent_workers=False,
                          generator=torch.Generator(),  # its own: seeding workers must not draw from the global RNG
                          worker_init_fn=_ignore_interrupts)

    def next(self) -> dict[str, torch.Tensor]:
        if self._iterator is None:
            self._iterator = iter(self._loader())
        index, _ = self.take()
        own = index[self.start:self.start + self.size]
        pixels, items = next(self._iterator)
        if not torch.equal(items, own):  # the loader replays this sampler: a mismatch is a bug, never data
            raise RuntimeError(f"streamed batch out of step with the sampler ({items[:4].tolist()} vs "
                               f"{own[:4].tolist()})")
        self.last_index = own
        image = from_uint8(pixels.to(self.device, non_blocking=True))
        if self.flip:  # drawn for the whole global batch, as TensorBatches does, then sliced
            flip = torch.rand(self.batch_size, 1, 1, 1, device=image.device) < 0.5
            image = torch.where(flip[self.start:self.start + self.size], image.flip(-1), image)
        batch = {"image": image}
        if self.data.labels is not None:
            batch["label"] = self.data.labels[own].to(self.device)
        return batch

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._iterator = None  # the next batch restarts the workers at the restored position


# --- opening a source ------------------------------------------------------------------------------------------

def tar_shards(path: Path) -> list[Path] | None:
    """The .tar shards `path` names (a .tar file, or a folder holding .tar files and no images); None otherwise."""
    if path.is_file():
        return [path] if path.suffix.lower() == ".tar" else None
    if path.is_dir():
        shards = sorted(p for p in path.iterdir() if p.suffix.lower() == ".tar" and p.is_file())
        if shards and not any(is_image_file(p) for p in path.iterdir()):
            return shards
    return None


def _index_tar(shards: list[Path]) -> tuple[list[tuple[int, int, int, str]], list[int | None]]:
    """(shard, offset, size, name) of every image member, grouped WebDataset-style by key (the member name up to
    its first dot), and the class index of each from a `.cls` member when there is one."""
    members, labels = [], []
    for number, shard in enumerate(shards):
        try:
            with tarfile.open(shard, "r:") as tar:  # uncompressed only: members are read at their offsets
                images, classes = {}, {}
                for member in tar:
                    if not member.isfile():
                        continue
                    key, dot, suffix = member.name.partition(".")
                    suffix = "." + suffix.lower()
                    if suffix in IMAGE_SUFFIXES and key not in images:
                        images[key] = (number, member.offset_data, member.size, member.name)
                    elif suffix in LABEL_SUFFIXES:
                        classes[key] = tar.extractfile(member).read().decode().strip()
        except (tarfile.TarError, OSError, UnicodeDecodeError) as error:
            raise GanforgeError(f"--data {shard}: cannot read the shard as an uncompressed tar ({error})") from None
        for key, member in images.items():
            members.append(member)
            text = classes.get(key)
            try:
                labels.append(None if text is None else int(text))
            except ValueError:
                raise GanforgeError(f"--data {shard}: {key}.cls must hold a class number, got {text[:20]!r}") from None
    if not members:
        raise GanforgeError(f"--data {shards[0].parent if len(shards) > 1 else shards[0]}: no image members in the "
                            f"shard(s) (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return members, labels


def _array_records(path: Path, resolution: int | None, channels: int | None, limit: int | None, transparent: bool):
    where = f"--data {path}"
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as error:
        raise GanforgeError(f"{where}: cannot read the array ({str(error).splitlines()[0]})") from None
    if array.dtype.kind not in "biuf":
        raise GanforgeError(f"{where}: pixel values must be numbers, got dtype {array.dtype}")
    if array.ndim not in (3, 4) or 0 in array.shape:
        raise GanforgeError(f"{where}: expected images shaped (N, H, W), (N, H, W, C) or (N, C, H, W), "
                            f"got {array.shape}")
    layout = "nhw" if array.ndim == 3 else "nchw" if array.shape[1] in (1, 3, 4) or array.shape[-1] not in (1, 3, 4) \
        else "nhwc"
    stored = 1 if layout == "nhw" else array.shape[1] if layout == "nchw" else array.shape[-1]
    if stored not in (1, 3, 4):
        raise GanforgeError(f"{where}: expected 1, 3 or 4 channels, got shape {array.shape}")
    count = len(array) if limit is None else min(limit, len(array))
    value_range = None
    if array.dtype != np.uint8:  # the scale comes from the whole array's range, read in bounded chunks
        low, high = np.inf, -np.inf
        for start in range(0, len(array), 1024):
            chunk = np.asarray(array[start:start + 1024], dtype=np.float64)
            if not np.isfinite(chunk).all():
                raise GanforgeError(f"{where}: non-finite values (NaN or inf) in rows {start} to "
                                    f"{start + len(chunk) - 1}")
            low, high = min(low, chunk.min()), max(high, chunk.max())
        if not (low >= -1 and high <= 1) and (low < 0 or high > 255):
            raise GanforgeError(f"{where}: values must be uint8, in [0, 1], [-1, 1] or [0, 255]; "
                                f"got [{low:g}, {high:g}]")
        value_range = (float(low), float(high))
    keep_alpha = transparent and stored == 4
    if channels is None:
        channels = 4 if keep_alpha else 1 if stored == 1 else 3
    height, width = array.shape[1:3] if layout != "nchw" else array.shape[2:4]
    if resolution is None:
        resolution = auto_resolution(height, width)
    return ArrayRecords(path, layout, value_range, resolution, channels, count, keep_alpha)


def _folder_records(folder: Path, resolution: int | None, channels: int | None, limit: int | None,
                    transparent: bool):
    """The folder's images (channels and resolution detected as the in-memory reader does) and folder labels."""
    files = list_images(folder)
    if not files:
        raise GanforgeError(f"--data {folder}: no image files found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    probe = [p for p in files[:200] if _readable(p)]  # as the in-memory reader decides, from the first 200 files
    if channels is None:
        channels = 4 if transparent else 1 if all(_is_grey(p) for p in probe) else 3
    if resolution is None:
        sizes = sorted(min(_size(p)) for p in probe)
        resolution = auto_resolution(sizes[len(sizes) // 2], sizes[len(sizes) // 2]) if sizes else 64
    if limit is not None:
        files = files[:limit]
    parts = [p.relative_to(folder).parts for p in files]
    classes = sorted({part[0] for part in parts if len(part) > 1})
    labels = None
    if classes and all(len(part) > 1 for part in parts):
        labels = torch.tensor([classes.index(part[0]) for part in parts])
    return FileRecords(folder, files, resolution, channels), labels, classes if labels is not None else []


def open_source(data, workers: int | None = None) -> StreamSet:
    """`data.source` (a folder, a .npy array, a .tar shard or a folder of shards) as a lazily read StreamSet."""
    path = Path(data.source).expanduser()
    workers = data.workers if workers is None else workers
    if not path.exists():
        raise GanforgeError(f"--data {data.source}: no such file or folder")
    shards = tar_shards(path)
    if shards is not None:
        members, found = _index_tar(shards)
        if data.limit is not None:
            members, found = members[:data.limit], found[:data.limit]
        first = TarRecords(shards, members[:1], 64, 4).raw(0)  # channels and size from the first picture
        with Image.open(io.BytesIO(first)) as picture:
            grey, size = is_grey_mode(picture.mode), picture.size
        channels = data.channels or (4 if data.transparent else 1 if grey else 3)
        resolution = data.resolution or auto_resolution(size[1], size[0])
        labelled = all(label is not None for label in found)
        labels = torch.tensor(found) if labelled else None
        classes = [str(c) for c in range(int(labels.max()) + 1)] if labelled else []
        named = (path if path.is_dir() else path.parent) / CLASSES_FILE  # written by `ganforge prepare`
        if labelled and named.is_file() and len(named.read_text().splitlines()) >= len(classes):
            classes = named.read_text().splitlines()
        records = TarRecords(shards, members, resolution, channels)
        return StreamSet(records, labels, classes, str(path), workers, data.memory_budget_mb)
    if path.is_dir():
        records, labels, classes = _folder_records(path, data.resolution, data.channels, data.limit, data.transparent)
        return StreamSet(records, labels, classes, str(path), workers, data.memory_budget_mb)
    if path.suffix.lower() == ".npy":
        records = _array_records(path, data.resolution, data.channels, data.limit, data.transparent)
        return StreamSet(records, None, [], str(path), workers, data.memory_budget_mb)
    raise GanforgeError(f"--data {data.source}: streaming reads a folder of images, a .npy array (memory-mapped) or "
                        f".tar shards; convert other files with `ganforge prepare {data.source} OUT`")


def open_images(data):
    """The training images of `data` (a DataConfig): in memory while the decoded set fits data.memory_budget_mb,
    else (or with data.stream) streamed from disk."""
    key = data.source.lower()
    path = Path(data.source).expanduser()
    named = key == "digits" or key in TORCHVISION_SETS
    streamable = not named and path.exists() and (path.is_dir() or path.suffix.lower() in (".npy", ".tar"))
    if not streamable:
        if data.stream and not named and path.exists():
            open_source(data)  # its one-line error names what streaming reads
        if data.stream:
            raise GanforgeError(f"data.stream: --data {data.source} is a named data set that torchvision loads into "
                                "memory; stream a folder, a .npy array or .tar shards instead")
        if data.transparent:
            raise GanforgeError(f"data.transparent: --data {data.source} has no alpha channel to keep (use a "
                                "folder of PNG/WebP images, .tar shards or a .npy array with 4 channels)")
        return load_images(data.source, data.resolution, data.channels, data.root, data.limit)
    source = open_source(data)
    if data.stream or source.decoded_mb > data.memory_budget_mb:
        if not data.stream and int(os.environ.get("RANK", "0")) == 0:
            print(f"data: {len(source)} images at {source.resolution} px take {source.decoded_mb:.0f} MiB decoded, "
                  f"over data.memory_budget_mb {data.memory_budget_mb:g}: streaming them with {source.workers} "
                  "worker(s)", file=sys.stderr)
        return source
    if tar_shards(path) is not None or data.transparent:  # the folder and array readers flatten alpha
        return source.in_memory()
    return load_images(data.source, data.resolution, data.channels, data.root, data.limit)
