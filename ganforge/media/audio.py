"""Audio samples: 16-bit PCM WAV (one file per clip in a folder, or one file with the clips separated by silence),
a spectrogram figure, `.npz`; and a WAV reader."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.media.batches import Audio
from ganforge.media.files import save_npz, writing

GAP_SECONDS = 0.25  # silence between clips written to one file
MAX_SPECTROGRAMS = 16


def joined(samples: Audio, gap: float = GAP_SECONDS) -> torch.Tensor:
    """All clips one after another as (C, L'), separated by `gap` seconds of silence."""
    silence = samples.tensor.new_zeros(samples.tensor.shape[1], round(gap * samples.sample_rate))
    parts = []
    for clip in samples.tensor:
        parts += [clip, silence]
    return torch.cat(parts[:-1], -1)


def save_wav(path: Path, clip: torch.Tensor, sample_rate: int) -> None:
    """One clip (C, L) in [-1, 1] as a 16-bit PCM WAV file."""
    pcm = clip.clamp(-1, 1).mul(32767).round().to(torch.int16).T.contiguous().numpy()  # interleaved (L, C)
    with writing(path), wave.open(str(path), "wb") as handle:
        handle.setnchannels(clip.shape[0])
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(pcm.astype("<i2").tobytes())


def read_wave(path: str | Path) -> tuple[np.ndarray, int]:
    """A WAV file (8/16/24/32-bit PCM or 32/64-bit float) as float64 samples (L, C) in [-1, 1] and its rate."""
    from scipy.io import wavfile

    try:
        rate, data = wavfile.read(str(path))
    except (OSError, EOFError, ValueError) as error:
        raise GanforgeError(f"{path}: cannot read the WAV file ({error})") from None
    if data.dtype.kind == "f":
        values = data.astype(np.float64)
    elif data.dtype == np.uint8:
        values = (data.astype(np.float64) - 128) / 128
    elif data.dtype.kind == "i":
        values = data.astype(np.float64) / 2 ** (8 * data.dtype.itemsize - 1)
    else:
        raise GanforgeError(f"{path}: unsupported WAV sample type {data.dtype}")
    values = values if values.ndim == 2 else values[:, None]
    if not np.isfinite(values).all():
        raise GanforgeError(f"{path}: the WAV file holds non-finite samples (NaN or inf)")
    return np.clip(values, -1, 1), int(rate)


def read_wav(path: str | Path) -> Audio:
    """A WAV file as one clip (1, C, L) in [-1, 1]."""
    values, rate = read_wave(path)
    clip = torch.from_numpy(values.T.astype(np.float32).copy())
    return Audio(tensor=clip[None], sample_rate=rate)


def write_joined(samples: Audio, path: Path, **_) -> str:
    save_wav(path, joined(samples), samples.sample_rate)
    seconds = samples.tensor.shape[-1] / samples.sample_rate
    return f"{len(samples)} clips of {seconds:.2f} s at {samples.sample_rate} Hz, {GAP_SECONDS} s apart"


def write_folder(samples: Audio, path: Path, progress: bool = False, **_) -> str:
    from ganforge.media.progress import track

    with writing(path, folder=True):
        for i in track(range(len(samples)), "writing", enabled=progress):
            save_wav(path / f"{i:05d}.wav", samples.tensor[i], samples.sample_rate)
    return f"{len(samples)} WAV files at {samples.sample_rate} Hz"


def spectrogram(clip: torch.Tensor, sample_rate: int) -> tuple[np.ndarray, int]:
    """Magnitude in dB (frequency, time) of a (C, L) clip's channel mean, and the STFT hop in samples."""
    signal = clip.float().mean(0)
    n_fft = 2 ** max(4, min(10, int(math.log2(max(16, signal.shape[-1] // 4)))))
    hop = n_fft // 4
    if signal.shape[-1] < n_fft:
        signal = torch.nn.functional.pad(signal, (0, n_fft - signal.shape[-1]))
    stft = torch.stft(signal, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True)
    return (20 * torch.log10(stft.abs() + 1e-5)).numpy(), hop


def write_spectrograms(samples: Audio, path: Path, **_) -> str:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise GanforgeError("spectrogram figures need the package matplotlib: pip install matplotlib") from None
    count = min(len(samples), MAX_SPECTROGRAMS)
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    figure = Figure(figsize=(3.2 * cols, 2.4 * rows), layout="constrained")
    seconds = samples.tensor.shape[-1] / samples.sample_rate
    for i in range(count):
        axes = figure.add_subplot(rows, cols, i + 1)
        decibels, _ = spectrogram(samples.tensor[i], samples.sample_rate)
        axes.imshow(decibels, origin="lower", aspect="auto", cmap="magma", vmin=decibels.max() - 80,
                    extent=(0, seconds, 0, samples.sample_rate / 2))
        axes.set_xlabel("time (s)", fontsize=7)
        axes.set_ylabel("frequency (Hz)", fontsize=7)
        axes.tick_params(labelsize=6)
        if samples.labels is not None:
            axes.set_title(f"label {int(samples.labels[i])}", fontsize=7)
    with writing(path):
        figure.savefig(path, dpi=100)
    return f"spectrograms of {count} of {len(samples)} clips"


def write_npz(samples: Audio, path: Path, **_) -> str:
    arrays = {"audio": samples.tensor.numpy().astype(np.float32), "sample_rate": np.int64(samples.sample_rate)}
    save_npz(path, arrays, samples.labels)
    return f"{len(samples)} clips as float32 (N, C, L) at {samples.sample_rate} Hz"
