"""Endless shuffled batches from an in-memory image tensor kept on the training device."""

from __future__ import annotations

import torch

from ganforge.data.sources import ImageSet
from ganforge.errors import GanforgeError
from ganforge.media import from_uint8


class ShuffledEpochs:
    """Shuffled passes over `n` items in batches, with a resumable position.

    The state (shuffling RNG at the start of the pass, offset in it) is part of a checkpoint, and each batch gets
    its own seed derived from the pass and the offset (for crops, flips, degradations), so a resumed run sees
    exactly the batches an uninterrupted one would. A pass repeats the items `repeats` times.
    """

    def __init__(self, n: int, batch_size: int, seed: int, repeats: int = 1):
        self.n, self.batch_size, self.repeats = n, batch_size, repeats
        self.rng = torch.Generator().manual_seed(seed)
        self._new_epoch()

    def _new_epoch(self) -> None:
        self.epoch_start = self.rng.get_state()
        self.order = torch.cat([torch.randperm(self.n, generator=self.rng) for _ in range(self.repeats)])
        self.epoch_seed = int(torch.randint(0, 2 ** 62, (1,), generator=self.rng))
        self.offset = 0

    def take(self) -> tuple[torch.Tensor, int]:
        """The next batch's item indices (CPU) and a seed for the batch's own random choices."""
        if self.offset + self.batch_size > len(self.order):
            self._new_epoch()
        index = self.order[self.offset:self.offset + self.batch_size]
        seed = self.epoch_seed + self.offset
        self.offset += self.batch_size
        return index, seed

    def state_dict(self) -> dict:
        return {"epoch_start": self.epoch_start.clone(), "offset": self.offset}

    def load_state_dict(self, state: dict) -> None:
        self.rng.set_state(state["epoch_start"])
        self._new_epoch()
        self.offset = int(state["offset"])


class TensorBatches(ShuffledEpochs):
    """Shuffled epochs over a uint8 image tensor resident on `device`; batches come out as float in [-1, 1]."""

    def __init__(self, data: ImageSet, batch_size: int, device: torch.device, seed: int, flip: bool = False):
        if batch_size > len(data):
            raise GanforgeError(f"train.batch_size {batch_size} is larger than the data set ({len(data)} images)")
        self.images = data.images.to(device)
        self.labels = None if data.labels is None else data.labels.to(device)
        self.flip = flip
        super().__init__(len(data), batch_size, seed)

    def next(self) -> dict[str, torch.Tensor]:
        index, _ = self.take()
        index = index.to(self.images.device, non_blocking=True)
        image = from_uint8(self.images[index])
        if self.flip:
            flip = torch.rand(image.shape[0], 1, 1, 1, device=image.device) < 0.5
            image = torch.where(flip, image.flip(-1), image)
        batch = {"image": image}
        if self.labels is not None:
            batch["label"] = self.labels[index]
        return batch
