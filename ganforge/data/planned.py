"""Batches planned in the training process and made by DataLoader workers (the streamed image-to-image and
super-resolution sets): the sampler replays the shuffled epochs from a checkpointable state and hands each worker a
whole batch to make, as (item indices, batch seed); the worker decodes only what that batch needs."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from ganforge.data.batches import ShuffledEpochs
from ganforge.data.records import Substitutes
from ganforge.data.stream import _ignore_interrupts


class BatchMaker(Substitutes, Dataset):
    """Makes one planned batch in a worker: `make(indices, seed)` returns a dict of tensors. Its "items" are whole
    batches, keyed by (indices, seed); `readable` replaces a broken file by the next readable item."""

    def __init__(self, count: int):
        self.count = count

    def __len__(self) -> int:
        return self.count

    def make(self, index: list[int], seed: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def __getitem__(self, key: tuple[tuple[int, ...], int]) -> dict[str, torch.Tensor]:
        index, seed = key
        return {**self.make(list(index), seed), "index": torch.tensor(index)}


class _Plan:
    """The DataLoader's sampler: each batch as (indices, seed), replayed from a sampler state. It holds numbers only
    (no reference back to the batches, so dropping those frees the workers at once)."""

    def __init__(self, n: int, batch_size: int, repeats: int, state: dict):
        self.n, self.batch_size, self.repeats, self.state = n, batch_size, repeats, state

    def __iter__(self):
        epochs = ShuffledEpochs(self.n, self.batch_size, 0, self.repeats)
        epochs.load_state_dict(self.state)
        while True:
            index, seed = epochs.take()
            yield tuple(index.tolist()), seed


class PlannedBatches(ShuffledEpochs):
    """Shuffled epochs whose batches a `BatchMaker` makes ahead of time in `workers` DataLoader processes; the same
    batches as making them here, in order, and a restored state restarts the workers at that position."""

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device, workers: int, repeats: int = 1):
        self.device, self.workers, self._iterator = torch.device(device), workers, None
        super().__init__(n, batch_size, seed, repeats)

    def maker(self) -> BatchMaker:
        raise NotImplementedError

    def _loader(self) -> DataLoader:
        workers = self.workers
        return DataLoader(self.maker(), sampler=_Plan(self.n, self.batch_size, self.repeats, self.state_dict()),
                          batch_size=None, num_workers=workers, pin_memory=self.device.type == "cuda",
                          prefetch_factor=2 if workers else None, persistent_workers=False,
                          generator=torch.Generator(),  # its own: seeding workers must not draw from the global RNG
                          worker_init_fn=_ignore_interrupts)

    def made(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The next batch as the workers made it (on the CPU), and its item indices."""
        if self._iterator is None:
            self._iterator = iter(self._loader())
        index, _ = self.take()
        batch = next(self._iterator)
        made = batch.pop("index")
        if not torch.equal(made, index):  # the loader replays this sampler: a mismatch is a bug, never data
            raise RuntimeError(f"streamed batch out of step with the sampler ({made[:4].tolist()} vs "
                               f"{index[:4].tolist()})")
        return batch, index

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._iterator = None  # the next batch restarts the workers at the restored position
