"""An audio feature extractor: clips (N, C, L) -> log-mel spectrogram -> the small VGG-style domain classifier.

The shipped `spoken-digits` extractor is one (trained on the Free Spoken Digit Dataset by
benchmarks/audio_classifier.py, one speaker held out); `ganforge evaluate fit-extractor` fits one on any labelled
folder of WAV files.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.errors import GanforgeError
from ganforge.metrics.extractors import DomainClassifier
from ganforge.metrics.fit import save_classifier, train_classifier

PEAK_FLOOR = 0.01  # clips are peak-normalised, but those quieter than -40 dBFS stay quiet (silence looks silent)
LOG_FLOOR = 1e-4


def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int) -> Tensor:
    """Triangular filters (n_mels, n_freqs) on the HTK mel scale from 0 Hz to Nyquist."""
    def mel(hz):
        return 2595 * math.log10(1 + hz / 700)

    edges = torch.linspace(mel(0), mel(sample_rate / 2), n_mels + 2)
    hz = 700 * (10 ** (edges / 2595) - 1)
    freqs = torch.linspace(0, sample_rate / 2, n_freqs)
    lower, centre, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    return rising.minimum(falling).clamp(min=0)


def audio_classifier_config(name: str, classes: list[str], sample_rate: int, length: int) -> dict:
    """The default audio classifier: 64 log-mel bands of a 32 ms / 16 ms STFT (at 8 kHz: 256 / 128 samples) into
    the domain classifier's three conv stages (16, 32, 64 channels) and 128 features."""
    n_fft = 2 ** round(math.log2(sample_rate * 0.032))
    return {"architecture": "audio-classifier", "name": name, "classes": list(classes), "channels": 1,
            "resolution": 64, "widths": [16, 32, 64], "feature_dim": 128, "dropout": 0.3,
            "sample_rate": sample_rate, "length": length, "n_fft": n_fft, "hop": n_fft // 2, "n_mels": 64,
            "mean": 0.0, "std": 1.0}


class AudioClassifier(DomainClassifier):
    """Log-mel spectrogram of each clip (mono, cropped or padded to `length`, peak-normalised) fed to the domain
    classifier; the inputs must be at the extractor's `sample_rate` (`ganforge.metrics.audio` resamples)."""

    modality = "audio"

    def __init__(self, config: dict):
        super().__init__(config)
        self.sample_rate, self.length = int(config["sample_rate"]), int(config["length"])
        self.n_fft, self.hop = int(config["n_fft"]), int(config["hop"])
        self.register_buffer("mel", mel_filterbank(self.n_fft // 2 + 1, config["n_mels"], self.sample_rate),
                             persistent=False)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.mean, self.std = float(config["mean"]), float(config["std"])
        self.resize_filter = (f"mono, {self.length} samples at {self.sample_rate} Hz, peak-normalised, "
                              f"log-mel {config['n_mels']} (STFT {self.n_fft}/{self.hop})")

    def log_mel(self, clips: Tensor) -> Tensor:
        """Standardised log-mel spectrograms (N, 1, mels, frames) of clips (N, C, L) or (N, L)."""
        if clips.dim() == 3:
            clips = clips.float().mean(1)
        if clips.dim() != 2:
            raise GanforgeError(f"audio clips must be N,C,L or N,L; got shape {tuple(clips.shape)}")
        length = clips.shape[-1]
        clips = clips[:, :self.length] if length >= self.length else F.pad(clips, (0, self.length - length))
        clips = clips / clips.abs().amax(-1, keepdim=True).clamp(min=PEAK_FLOOR)
        spec = torch.stft(clips, self.n_fft, self.hop, window=self.window, center=False, return_complex=True)
        mel = torch.einsum("mf,nft->nmt", self.mel, spec.abs().square())
        return ((mel + LOG_FLOOR).log() - self.mean).div(self.std).unsqueeze(1)

    def preprocess(self, clips: Tensor) -> Tensor:
        return self.log_mel(clips)


def shift_and_gain(clips: Tensor, generator: torch.Generator, shift: int, gain_db: float) -> Tensor:
    """Training augmentation: each clip rolled by up to `shift` samples (either way) and scaled by up to
    `gain_db` decibels, so the classifier does not rely on where or how loud the word is."""
    n, length = clips.shape[0], clips.shape[-1]
    offsets = torch.randint(-shift, shift + 1, (n, 1), generator=generator)
    index = (torch.arange(length).view(1, -1) - offsets) % length
    gain = 10 ** ((torch.rand(n, 1, generator=generator) * 2 - 1) * gain_db / 20)
    return clips.gather(-1, index.view(n, 1, -1).expand_as(clips)) * gain.view(n, 1, 1)


def fit_audio_classifier(clips: Tensor, labels: Tensor, classes: list[str], out: str | Path, sample_rate: int,
                         epochs: int = 15, batch_size: int = 64, lr: float = 3e-3, seed: int = 0,
                         holdout: tuple[Tensor, Tensor] | None = None, notes: dict | None = None, log=print) -> dict:
    """Train an AudioClassifier on clips (N, 1, L) at `sample_rate` and integer labels (batches of at most
    `batch_size`, smaller for small sets); write OUT.safetensors + OUT.json (with the training report, held-out
    accuracy included when `holdout` is given)."""
    if len(clips) != len(labels) or len(clips) < 2:
        raise GanforgeError(f"need matching clips and labels (got {len(clips)} clips, {len(labels)} labels)")
    if len(classes) < 2:
        raise GanforgeError(f"a feature extractor needs at least 2 classes; found {len(classes)}")
    out = Path(out).with_suffix(".safetensors")
    batch_size = min(batch_size, max(8, len(clips) // 8))  # a small set still gets several steps per epoch
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    config = audio_classifier_config(out.stem, classes, sample_rate, clips.shape[-1])
    model = AudioClassifier(config)
    with torch.no_grad():  # standardise the log-mel values with the training set's own mean and spread
        sample = model.log_mel(clips[:512])
        config["mean"], config["std"] = float(sample.mean()), float(sample.std())
    model = AudioClassifier(config)
    shift = clips.shape[-1] // 8
    started = time.process_time()
    train_classifier(model, lambda x: model(shift_and_gain(x, generator, shift, gain_db=12))[1], clips, labels,
                     epochs, batch_size, lr, generator, log)
    report = {"n_train": len(clips), "epochs": epochs, "seed": seed,
              "cpu_seconds": round(time.process_time() - started), "augment": {"shift": shift, "gain_db": 12},
              **(notes or {})}
    if holdout is not None:
        _, logits = model.extract(holdout[0])
        report["holdout_accuracy"] = round((logits.argmax(1) == holdout[1]).float().mean().item(), 4)
        report["n_holdout"] = len(holdout[0])
    save_classifier(model, out, report)
    return report
