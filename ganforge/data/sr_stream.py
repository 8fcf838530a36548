"""Super-resolution data larger than memory: a folder of high-resolution images of any size read lazily by a
`torch.utils.data.DataLoader` (worker processes decode, crop and degrade; pinned memory on CUDA; prefetch).

A batch's crops are planned from the file headers (`plan_hr_crops`, the in-memory path's draws for the same seed)
and degraded with the same generator afterwards, so streamed and in-memory training see identical (LR, HR) batches
and a resumed run continues mid-epoch bit-exactly. `open_hr` keeps the in-memory path while the decoded images fit
`data.memory_budget_mb`, and streams a folder otherwise (or when `data.stream` is on).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from ganforge.data.degrade import Degradation
from ganforge.data.image_files import list_images, read_image, warn_skipped
from ganforge.data.planned import BatchMaker, PlannedBatches
from ganforge.data.sr import SuperResolutionImages, _from_array, _set_channels, cut_hr, plan_hr_crops
from ganforge.data.stream import EVAL_IMAGES
from ganforge.errors import GanforgeError


class HRFiles:
    """A folder's high-resolution images without their pixels: files, (h, w) from the headers, and the reader."""

    def __init__(self, folder: Path, crop: int, channels: int | None, limit: int | None):
        from PIL import Image

        files = list_images(folder)[:limit]
        if not files:
            raise GanforgeError(f"--data {folder}: no image files found")
        self.folder, self.channels = folder, channels or 3  # as the in-memory reader: RGB unless 1 is asked for
        self.files, self.sizes, bad = [], [], []
        for path in files:
            try:
                with Image.open(path) as picture:
                    w, h = picture.size
            except Exception as error:  # unreadable: left out and counted, as the in-memory reader does
                bad.append(f"{path.name}: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
                continue
            self.files.append(path)
            self.sizes.append((h, w))
        if not self.files:
            raise GanforgeError(f"--data {folder}: all {len(files)} image files are unreadable or corrupt "
                                f"(first: {bad[0]})")
        warn_skipped(folder, len(bad), bad[0] if bad else "")
        small = [p.name for p, (h, w) in zip(self.files, self.sizes) if min(h, w) < crop]
        if small:
            raise GanforgeError(f"--data {folder}: {len(small)} image(s) smaller than the {crop}-px crop (first: "
                                f"{small[0]}); lower --resolution or remove them")

    def __len__(self) -> int:
        return len(self.files)

    def decoded_mb(self) -> float:
        return sum(h * w for h, w in self.sizes) * self.channels / 2 ** 20

    def __getitem__(self, index: int) -> torch.Tensor:
        """Image `index` as uint8 (C, H, W); GanforgeError naming the file if unreadable."""
        path = self.files[int(index)]
        mode = "L" if self.channels == 1 else "RGB"
        image = _from_array(read_image(path, mode, name=str(path.relative_to(self.folder))))
        return _set_channels(image, self.channels)


class SuperResolutionStream(SuperResolutionImages):
    """`SuperResolutionImages` with the pixels on disk: `images` decodes an item when asked for it."""

    def __init__(self, files: HRFiles, crop: int, degradation: Degradation, workers: int, budget_mb: float = 4096):
        super().__init__(files, crop, degradation, str(files.folder),  # type: ignore[arg-type]
                         [str(p.relative_to(files.folder)) for p in files.files])
        self.workers, self.budget_mb = workers, budget_mb

    @property
    def channels(self) -> int:
        return self.images.channels

    def sizes(self) -> list[tuple[int, int]]:
        return self.images.sizes

    def as_float(self) -> torch.Tensor:
        """Centre crops for evaluation: all of a small set, else evenly spaced ones (at most EVAL_IMAGES and what
        fits the memory budget as float32)."""
        fits = int(self.budget_mb * 2 ** 20 // (4 * self.channels * self.crop ** 2))
        count = max(1, min(len(self), EVAL_IMAGES, fits))
        chosen = torch.linspace(0, len(self) - 1, count).round().long().unique().tolist()
        return SuperResolutionImages([self.images[i] for i in chosen], self.crop, self.degradation).as_float()

    def batches(self, batch_size: int, device: torch.device, seed: int, flip: bool = False) -> "StreamedPairBatches":
        return StreamedPairBatches(self, batch_size, device, seed, flip)


class _Maker(BatchMaker):
    """Makes a planned batch in a worker: HR crops decoded from the files, then degraded."""

    def __init__(self, data: SuperResolutionStream, flip: bool):
        super().__init__(len(data))
        self.files, self.crop, self.flip = data.images, data.crop, flip
        self.pairs = data.pairs  # degrades HR crops with the batch's generator

    def make(self, index: list[int], seed: int) -> dict[str, torch.Tensor]:
        rng = torch.Generator().manual_seed(seed)
        plan = plan_hr_crops(index, rng, self.files.sizes, self.crop, self.flip)
        count = len(self.files)
        hr = [cut_hr(self.readable(self.files.__getitem__, i, count, "images"), where, self.crop) for i, where in plan]
        return self.pairs(torch.stack(hr), rng)


class StreamedPairBatches(PlannedBatches):
    """The in-memory `PairBatches` order, crops and degradations, made ahead of time by DataLoader workers."""

    def __init__(self, data: SuperResolutionStream, batch_size: int, device: torch.device, seed: int,
                 flip: bool = False):
        self.data, self.flip = data, flip
        super().__init__(len(data), batch_size, seed, device, data.workers, repeats=-(-batch_size // len(data)))

    def maker(self) -> _Maker:
        return _Maker(self.data, self.flip)

    def next(self) -> dict[str, torch.Tensor]:
        batch, _ = self.made()
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}


def open_hr(data, degradation: Degradation) -> SuperResolutionImages:
    """The super-resolution data of `data` (a DataConfig): a folder streams when its decoded images exceed
    data.memory_budget_mb (or with data.stream); other sources are small and held in memory."""
    path = Path(data.source).expanduser()
    if not path.is_dir():
        if data.stream:
            raise GanforgeError(f"data.stream: --data {data.source} is not a folder; super-resolution streams a "
                                "folder of high-resolution images")
        return SuperResolutionImages.from_source(data.source, data.resolution, degradation, data.channels,
                                                 data.root, data.limit)
    files = HRFiles(path, data.resolution, data.channels, data.limit)
    if not (data.stream or files.decoded_mb() > data.memory_budget_mb):
        return SuperResolutionImages.from_source(data.source, data.resolution, degradation, data.channels,
                                                 data.root, data.limit)
    if not data.stream and int(os.environ.get("RANK", "0")) == 0:
        print(f"data: {len(files)} high-resolution images take {files.decoded_mb():.0f} MiB decoded, over "
              f"data.memory_budget_mb {data.memory_budget_mb:g}: streaming them with {data.workers} worker(s)",
              file=sys.stderr)
    return SuperResolutionStream(files, data.resolution, degradation, data.workers, data.memory_budget_mb)
