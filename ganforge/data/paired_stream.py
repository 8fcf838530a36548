"""Image-to-image data larger than memory: paired or unpaired folders read lazily by a
`torch.utils.data.DataLoader` (worker processes decode, resize and crop; pinned memory on CUDA; prefetch).

A batch is planned from the file headers alone (`plan_crops`: the in-memory path's order, crops, flips and unpaired
partners for the same seed) and its items are read by the same reader (`PairFiles.read`), so streaming and in-memory
training see identical batches; the position in the epoch is a checkpoint's, so a resumed run continues mid-epoch
bit-exactly. Under torchrun each process decodes only its own slice of every global batch. `open_paired` keeps the
in-memory path while both domains, decoded at their held sizes, fit `data.memory_budget_mb`, and streams otherwise
(or when `data.stream` is on).
"""

from __future__ import annotations

import os
import sys

import torch

from ganforge.data.paired import PairedImages, PairFiles, cut, paired_files, plan_crops, unpaired_files
from ganforge.data.planned import BatchMaker, PlannedBatches
from ganforge.data.stream import EVAL_IMAGES
from ganforge.errors import GanforgeError
from ganforge.media import from_uint8


class LazyDomain:
    """One domain of a streamed set as a sequence: item i is decoded (at its held size) when asked for."""

    def __init__(self, files: PairFiles, domain: str):
        self.files, self.domain = files, domain

    def __len__(self) -> int:
        return len(self.files.sizes_a if self.domain == "a" else self.files.sizes_b)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.files.read(self.domain, int(index))


class PairedStream(PairedImages):
    """A paired or unpaired set read lazily: the in-memory `PairedImages` interface (len, channels, resolution,
    paired, a/b sequences, centre crops, batches) with the pixels on disk."""

    def __init__(self, files: PairFiles, workers: int, budget_mb: float = 4096):
        self.files, self.workers, self.budget_mb = files, workers, budget_mb
        self.a, self.b = LazyDomain(files, "a"), LazyDomain(files, "b")
        self.names, self.resolution, self.name, self.paired = files.names, files.resolution, files.source, files.paired

    @property
    def channels(self) -> int:
        return self.files.channels

    def as_float(self) -> torch.Tensor:
        """Target-domain (B) centre crops for evaluation in [-1, 1]: all of a small set, else evenly spaced ones,
        at most EVAL_IMAGES and at most what fits the memory budget as float32."""
        fits = int(self.budget_mb * 2 ** 20 // (4 * self.channels * self.resolution ** 2))
        count = max(2, min(len(self.b), EVAL_IMAGES, fits))
        return self.centre("b", torch.linspace(0, len(self.b) - 1, count).round().long().unique())

    def batches(self, batch_size: int, device: torch.device, seed: int, flip: bool = False) -> "PairedStreamBatches":
        """Endless shuffled batches {"a", "b"} of random crops on `device`, decoded by DataLoader workers."""
        return PairedStreamBatches(self, batch_size, device, seed, flip)


class _Maker(BatchMaker):
    """Makes this process's slice of a planned batch in a worker: decoded, resized and cropped pairs."""

    def __init__(self, files: PairFiles, resolution: int, flip: bool, start: int, size: int):
        super().__init__(len(files))
        self.files, self.resolution, self.flip, self.start, self.size = files, resolution, flip, start, size

    def _cut(self, image: torch.Tensor, where: tuple[int, int, bool]) -> torch.Tensor:
        top, left, flipped = where  # a replacement of another size keeps the crop inside it
        top, left = min(top, image.shape[-2] - self.resolution), min(left, image.shape[-1] - self.resolution)
        return cut(image, (top, left, flipped), self.resolution)

    def make(self, index: list[int], seed: int) -> dict[str, torch.Tensor]:
        files = self.files
        plan = plan_crops(index, seed, files.sizes_a, files.sizes_b, self.resolution, self.flip, files.paired)
        a, b = [], []
        for i, where_a, j, where_b in plan[self.start:self.start + self.size]:
            if files.paired:
                image_a, image_b = self.readable(files.read_pair, i, len(files), "image pairs")
            else:
                image_a = self.readable(lambda k: files.read("a", k), i, len(files.sizes_a), "images of domain A")
                image_b = self.readable(lambda k: files.read("b", k), j, len(files.sizes_b), "images of domain B")
            a.append(self._cut(image_a, where_a))
            b.append(self._cut(image_b, where_b))
        return {"a": torch.stack(a), "b": torch.stack(b)}


class PairedStreamBatches(PlannedBatches):
    """Shuffled epochs over a `PairedStream`: the same order, crops, flips and partners as `PairedBatches` for the
    same seed, with the decoding done ahead of time by DataLoader workers."""

    def __init__(self, data: PairedStream, batch_size: int, device: torch.device, seed: int, flip: bool = False):
        if batch_size > len(data):
            raise GanforgeError(f"train.batch_size {batch_size} is larger than the data set ({len(data)} images)")
        self.data, self.flip = data, flip
        self.start, self.size = 0, batch_size  # this process's slice of each global batch
        super().__init__(len(data), batch_size, seed, device, data.workers)

    def shard(self, rank: int, size: int) -> "PairedStreamBatches":
        """Decode only this process's `size` items of each global batch (under torchrun)."""
        self.start, self.size, self._iterator = rank * size, size, None
        return self

    def maker(self) -> _Maker:
        return _Maker(self.data.files, self.data.resolution, self.flip, self.start, self.size)

    def next(self) -> dict[str, torch.Tensor]:
        batch, _ = self.made()
        return {k: from_uint8(batch[k].to(self.device, non_blocking=True)) for k in ("a", "b")}


def open_paired(data, load_size: int | None = None, native: bool = False, paired: bool = True) -> PairedImages:
    """The image-to-image data of `data` (a DataConfig): paired (`paired_files`) or unpaired (`unpaired_files`),
    in memory while both domains decoded fit data.memory_budget_mb, else (or with data.stream) streamed."""
    if paired:
        files = paired_files(data.source, data.resolution, data.channels, load_size, data.limit, native)
    else:
        files = unpaired_files(data.source, data.resolution, data.channels, load_size, data.limit)
    if not (data.stream or files.decoded_mb() > data.memory_budget_mb):
        return files.in_memory()
    if not data.stream and int(os.environ.get("RANK", "0")) == 0:
        print(f"data: {len(files)} image pairs take {files.decoded_mb():.0f} MiB decoded, over "
              f"data.memory_budget_mb {data.memory_budget_mb:g}: streaming them with {data.workers} worker(s)",
              file=sys.stderr)
    return PairedStream(files, data.workers, data.memory_budget_mb)
