"""Typed sample batches: what a family generates, with what its writers need (frame rate, sample rate, vocabulary).

Image, video and audio samples are float in [-1, 1]; tokens are integer ids into a vocabulary. `wrap` builds the
right type from a family's output, so callers never branch on the modality themselves.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch


def to_uint8(values: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats to uint8 levels 0..255, same shape (values outside are clipped)."""
    return values.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


def from_uint8(levels: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 levels 0..255 to float in [-1, 1], same shape; the inverse of `to_uint8`."""
    levels = torch.as_tensor(np.ascontiguousarray(levels) if isinstance(levels, np.ndarray) else levels)
    if levels.dtype != torch.uint8:
        raise ValueError(f"from_uint8 expects uint8 levels, got {levels.dtype}")
    return levels.float().div(127.5).sub(1)


class Samples:
    """Common behaviour of the typed batches: a tensor whose first dimension is the sample, optional labels."""

    modality: ClassVar[str]
    dims: ClassVar[int]
    layout: ClassVar[str]
    tensor: torch.Tensor
    labels: torch.Tensor | None

    def __post_init__(self) -> None:
        if self.tensor.ndim != self.dims:
            raise ValueError(f"{self.modality} samples are shaped {self.layout}, got {tuple(self.tensor.shape)}")
        if self.labels is not None and len(self.labels) != len(self.tensor):
            raise ValueError(f"{len(self.labels)} labels for {len(self.tensor)} samples")

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def select(self, index: slice | torch.Tensor) -> "Samples":
        """The samples at `index` (a slice or indices), with their labels and settings."""
        return dataclasses.replace(self, tensor=self.tensor[index],
                                   labels=None if self.labels is None else self.labels[index])

    def settings(self) -> dict:
        """What the writers need besides the tensor and labels (sample rate, fps, vocabulary)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("tensor", "labels")}


@dataclass
class Images(Samples):
    """Images (N, C, H, W) in [-1, 1]."""

    modality: ClassVar[str] = "image"
    dims: ClassVar[int] = 4
    layout: ClassVar[str] = "(N, C, H, W)"
    tensor: torch.Tensor
    labels: torch.Tensor | None = None


@dataclass
class Video(Samples):
    """Clips (N, T, C, H, W) in [-1, 1] played at `fps` frames per second."""

    modality: ClassVar[str] = "video"
    dims: ClassVar[int] = 5
    layout: ClassVar[str] = "(N, T, C, H, W)"
    tensor: torch.Tensor
    fps: float
    labels: torch.Tensor | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.fps > 0:
            raise ValueError(f"video needs a positive frame rate, got fps={self.fps}")


@dataclass
class Audio(Samples):
    """Clips (N, C, L) in [-1, 1] of `sample_rate` samples per second."""

    modality: ClassVar[str] = "audio"
    dims: ClassVar[int] = 3
    layout: ClassVar[str] = "(N, C, L)"
    tensor: torch.Tensor
    sample_rate: int
    labels: torch.Tensor | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if int(self.sample_rate) != self.sample_rate or self.sample_rate < 1:
            raise ValueError(f"audio needs a positive whole sample rate, got {self.sample_rate}")
        self.sample_rate = int(self.sample_rate)


@dataclass
class Tokens(Samples):
    """Sequences (N, L) of ids into `vocabulary`, shown joined by `separator` ("" for characters)."""

    modality: ClassVar[str] = "tokens"
    dims: ClassVar[int] = 2
    layout: ClassVar[str] = "(N, L)"
    tensor: torch.Tensor
    vocabulary: list[str]
    separator: str = " "
    labels: torch.Tensor | None = None
    end: str | None = None  # a sequence ends at its first `end` token (e.g. "<eos>"): it and what follows are not shown

    def __post_init__(self) -> None:
        super().__post_init__()
        self.vocabulary = list(self.vocabulary)
        if self.tensor.is_floating_point():
            raise ValueError("token samples are integer ids, got floats")
        if self.end is not None and self.end not in self.vocabulary:
            raise ValueError(f"the end token {self.end!r} is not in the vocabulary")
        if any("\n" in token for token in self.vocabulary):
            raise ValueError("a token of the vocabulary contains a line break: samples could not be written as lines")
        if self.tensor.numel() and (int(self.tensor.min()) < 0 or int(self.tensor.max()) >= len(self.vocabulary)):
            raise ValueError(f"token ids must be in [0, {len(self.vocabulary)}), got [{int(self.tensor.min())}, "
                             f"{int(self.tensor.max())}]")


TYPES: dict[str, type[Samples]] = {t.modality: t for t in (Images, Video, Audio, Tokens)}


def wrap(output: torch.Tensor, modality: str, labels: torch.Tensor | None = None, **settings) -> Samples:
    """A family's output (any device) as its modality's batch on the CPU: floats clamped to [-1, 1], tokens as
    int64; `settings` are the family's `sample_info()` (fps, sample_rate, vocabulary...)."""
    if modality not in TYPES:
        raise ValueError(f"unknown modality '{modality}' (expected one of: {', '.join(TYPES)})")
    kind = TYPES[modality]
    known = {f.name for f in dataclasses.fields(kind)} - {"tensor", "labels"}
    unknown, missing = set(settings) - known, {f.name for f in dataclasses.fields(kind) if f.name in known
                                               and f.default is dataclasses.MISSING} - set(settings)
    if unknown or missing:
        raise ValueError(f"{modality} samples take {', '.join(sorted(known)) or 'no settings'} from the family's "
                         f"sample_info(); got {', '.join(sorted(settings)) or 'none'}")
    tensor = output.detach().cpu()
    tensor = tensor.long() if kind is Tokens else tensor.float().clamp(-1, 1)
    return kind(tensor=tensor, labels=None if labels is None else labels.detach().cpu(), **settings)


def concat(batches: list[Samples]) -> Samples:
    """One batch from several of the same type and settings (e.g. generated in chunks)."""
    first = batches[0]
    labels = None if first.labels is None else torch.cat([b.labels for b in batches])
    return dataclasses.replace(first, tensor=torch.cat([b.tensor for b in batches]), labels=labels)
