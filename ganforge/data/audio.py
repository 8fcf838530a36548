"""Audio training data: a folder of WAV files (or the built-in synthetic `tones`) as one float tensor of clips at the
model's sample rate and length, with class labels from sub-folders or `{label}_` file-name prefixes.

Every file is read with scipy (8/16/24/32-bit PCM and float WAV), mixed to mono, resampled to the model's rate with a
polyphase filter (`scipy.signal.resample_poly`), cropped or zero-padded to the model's length and normalised (peak or
RMS); unreadable, empty and all-silent files are skipped and counted, like unreadable images.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from ganforge.data.batches import ShuffledEpochs
from ganforge.errors import GanforgeError
from ganforge.media.audio import read_wave

AUDIO_SUFFIXES = {".wav", ".wave"}
NORMALIZE = ("peak", "rms", "none")
PEAK = 0.95  # peak normalisation target: a little headroom below full scale
RMS = 0.1  # RMS normalisation target (-20 dBFS); the few samples then beyond [-1, 1] are clipped
TONES_PER_CLASS = 32
TONES_RATE = 8000


def list_audio(folder: Path) -> list[Path]:
    """WAV files below `folder`, recursively, sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """A mono wave from `rate` to `target` samples per second (polyphase filter; length scales by target/rate)."""
    if rate == target:
        return wave
    from scipy.signal import resample_poly

    ratio = Fraction(target, rate)
    return resample_poly(wave, ratio.numerator, ratio.denominator)


def fit_length(wave: np.ndarray, length: int) -> np.ndarray:
    """The first `length` samples of `wave`, zero-padded at the end when it is shorter."""
    if len(wave) >= length:
        return wave[:length]
    return np.pad(wave, (0, length - len(wave)))


def normalize(wave: np.ndarray, how: str) -> np.ndarray:
    """Scale to a peak of PEAK ("peak"), an RMS of RMS ("rms", clipped to [-1, 1]) or leave as is ("none")."""
    if how == "peak":
        return wave * (PEAK / np.abs(wave).max())
    if how == "rms":
        return np.clip(wave * (RMS / np.sqrt(np.mean(wave ** 2))), -1, 1)
    return wave


def prepare(wave: np.ndarray, rate: int, target_rate: int, length: int, how: str) -> np.ndarray | None:
    """A (L, C) wave as the model's mono clip, or None when it is empty (or all zero, when normalising)."""
    if wave.size == 0:
        return None
    clip = resample(wave.mean(1), rate, target_rate)[:length]
    if how != "none" and not np.any(clip):  # nothing to normalise
        return None
    return fit_length(normalize(clip, how), length).astype(np.float32)  # loudness of the recording, not the padding


def folder_labels(folder: Path, files: list[Path]) -> tuple[list[str], list[int] | None]:
    """Class names and one label per file: the first sub-folder when every file has one, else the file-name prefix
    before the first '_' when every file has one; no labels otherwise."""
    parts = [p.relative_to(folder).parts for p in files]
    if all(len(part) > 1 for part in parts):
        names = [part[0] for part in parts]
    elif all("_" in p.stem for p in files):
        names = [p.stem.split("_", 1)[0] for p in files]
    else:
        return [], None
    classes = sorted(set(names), key=natural_key)
    if len(classes) < 2:
        return [], None
    return classes, [classes.index(name) for name in names]


def natural_key(text: str) -> list:
    """Sort key putting '2' before '10'."""
    return [int(piece) if piece.isdigit() else piece for piece in re.split(r"(\d+)", text)]


@dataclass
class AudioSet:
    """Clips (N, 1, L) as float32 in [-1, 1] at `sample_rate`, with optional integer labels."""

    waves: torch.Tensor
    sample_rate: int
    labels: torch.Tensor | None = None
    classes: list[str] = field(default_factory=list)
    name: str = ""
    skipped: int = 0  # unreadable, empty or silent files left out
    extra_facts: dict = field(default_factory=dict)  # what a family adds for its checkpoint (e.g. spectrogram stats)
    resolution = None  # not an image: the trainer leaves data.resolution unset
    channels = 1

    def __len__(self) -> int:
        return self.waves.shape[0]

    @property
    def length(self) -> int:
        return self.waves.shape[-1]

    @property
    def facts(self) -> dict:
        """What a model trained on these clips keeps in its checkpoint, so sampling needs no data."""
        return {"sample_rate": self.sample_rate, "length": self.length, **self.extra_facts}

    def batches(self, batch_size: int, device: torch.device, seed: int, flip: bool = False) -> "AudioBatches":
        """Endless shuffled training batches {"audio", "label"} on `device`."""
        return AudioBatches(self, batch_size, device, seed, flip)

    def as_float(self) -> torch.Tensor:
        """All clips (N, 1, L) in [-1, 1]."""
        return self.waves


class AudioBatches(ShuffledEpochs):
    """Shuffled epochs over clips resident on `device`; `flip` inverts the polarity of a random half (an
    augmentation that changes no audible property)."""

    def __init__(self, data: AudioSet, batch_size: int, device: torch.device, seed: int, flip: bool = False):
        if batch_size > len(data):
            raise GanforgeError(f"train.batch_size {batch_size} is larger than the data set ({len(data)} clips)")
        self.waves = data.waves.to(device)
        self.labels = None if data.labels is None else data.labels.to(device)
        self.flip = flip
        super().__init__(len(data), batch_size, seed)

    def next(self) -> dict[str, torch.Tensor]:
        index, seed = self.take()
        index = index.to(self.waves.device)
        audio = self.waves[index]
        if self.flip:
            sign = torch.randint(0, 2, (len(index), 1, 1), generator=torch.Generator().manual_seed(seed)) * 2 - 1
            audio = audio * sign.to(audio)
        batch = {"audio": audio}
        if self.labels is not None:
            batch["label"] = self.labels[index]
        return batch


def load_audio(source: str, sample_rate: int | None, length: int, how: str = "peak", limit: int | None = None
               ) -> AudioSet:
    """`source` (a folder of WAV files, or 'tones') as clips of `length` samples at `sample_rate` (None: the most
    common rate of the files), normalised `how` (peak | rms | none)."""
    if how not in NORMALIZE:
        raise GanforgeError(f"audio normalisation must be one of {', '.join(NORMALIZE)}, got '{how}'")
    if source.lower() == "tones":
        return tones(sample_rate or TONES_RATE, length, how, limit)
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise GanforgeError(f"--data {source}: audio models train on a folder of WAV files (or 'tones'); "
                            f"{'not a folder' if folder.exists() else 'no such folder'}")
    files = list_audio(folder)
    if not files:
        raise GanforgeError(f"--data {source}: no WAV files found (looked for {', '.join(sorted(AUDIO_SUFFIXES))})")
    classes, labels = folder_labels(folder, files)
    read, skipped, first_error = [], 0, ""
    for i, path in enumerate(files):
        if limit is not None and len(read) >= limit:
            break
        try:
            wave, rate = read_wave(path)
        except GanforgeError as error:
            skipped, first_error = skipped + 1, first_error or str(error)
            continue
        read.append((i, wave, rate))
    if not read:
        raise GanforgeError(f"--data {source}: all {skipped} WAV files are unreadable (first: {first_error})")
    target = sample_rate or Counter(rate for _, _, rate in read).most_common(1)[0][0]
    waves, kept = [], []
    for i, wave, rate in read:
        clip = prepare(wave, rate, target, length, how)
        if clip is None:
            skipped, first_error = skipped + 1, first_error or f"{files[i]}: empty or silent"
            continue
        waves.append(clip)
        kept.append(i)
    if not waves:
        raise GanforgeError(f"--data {source}: every WAV file is empty or silent")
    if skipped and int(os.environ.get("RANK", "0")) == 0:
        print(f"warning: skipped {skipped} unreadable, empty or silent WAV file(s) in {folder} (first: "
              f"{first_error})", file=sys.stderr)
    label_tensor = None if labels is None else torch.tensor([labels[i] for i in kept])
    return AudioSet(torch.from_numpy(np.stack(waves))[:, None], target, label_tensor,
                    classes if labels is not None else [], name=str(folder), skipped=skipped)


def tones(sample_rate: int, length: int, how: str = "peak", limit: int | None = None) -> AudioSet:
    """A built-in labelled toy set: ten classes of decaying harmonic notes (class k at 220 * 2^(k/4) Hz), each
    clip with its own onset, decay, harmonic mix and a little noise; deterministic."""
    rng = np.random.default_rng(0)
    count = TONES_PER_CLASS * 10 if limit is None else min(limit, TONES_PER_CLASS * 10)
    t = np.arange(length) / sample_rate
    waves, labels = [], []
    for i in range(count):
        k = i % 10
        pitch = 220 * 2 ** (k / 4) * (1 + rng.uniform(-0.01, 0.01))
        onset = rng.uniform(0, 0.2) * length / sample_rate
        envelope = np.where(t >= onset, np.exp(-(t - onset) * rng.uniform(2, 6)), 0.0)
        harmonics = sum(rng.uniform(0.2, 1) / h * np.sin(2 * math.pi * h * pitch * t + rng.uniform(0, 2 * math.pi))
                        for h in (1, 2, 3) if h * pitch < sample_rate / 2)
        wave = envelope * harmonics + 0.01 * rng.standard_normal(length)
        waves.append(np.clip(normalize(wave, how), -1, 1).astype(np.float32))
        labels.append(k)
    return AudioSet(torch.from_numpy(np.stack(waves))[:, None], sample_rate, torch.tensor(labels),
                    [str(k) for k in range(10)], name="tones")
