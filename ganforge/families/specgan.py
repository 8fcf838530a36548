"""SpecGAN (Donahue, McAuley & Puckette 2019, section 4): the WaveGAN paper's comparison model. An image GAN on
128 x 128 log-magnitude spectrograms (each frequency bin standardised with the training data's statistics, clipped
at 3 standard deviations, scaled to [-1, 1]); generated spectrograms become audio by Griffin-Lim phase recovery
(`torch.stft` / `torch.istft`, 16 iterations as in the paper, with Perraudin et al.'s momentum)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn

from ganforge.config import option
from ganforge.data.audio import AudioBatches, AudioSet
from ganforge.errors import GanforgeError
from ganforge.families import register
from ganforge.families.base import Batch, Capabilities
from ganforge.families.cgan import ConditionalDiscriminator, ConditionalGenerator
from ganforge.families.kinds.audio import AudioGAN, AudioOptions
from ganforge.nn import init_dcgan_weights
from ganforge.nn.dcgan import Discriminator, Generator

BINS = 128  # frequency bins kept (the STFT's top bin, at Nyquist, is dropped) and frames per clip
N_FFT = 2 * BINS
CLIP_STD = 3.0
LOG_FLOOR = 1e-6
LENGTHS = (8192, 16384)  # hop 64 or 128 samples: 128 frames of a 256-sample window


class Spectrograms:
    """Clips <-> standardised log-magnitude spectrograms (N, 1, 128, 128) in [-1, 1], and back by Griffin-Lim."""

    def __init__(self, length: int, mean: torch.Tensor | None = None, std: torch.Tensor | None = None):
        if length not in LENGTHS:
            raise GanforgeError(f"model.options.length: specgan makes clips of {' or '.join(map(str, LENGTHS))} "
                                f"samples (128 frames of hop {LENGTHS[0] // BINS} or {LENGTHS[1] // BINS}), "
                                f"got {length}")
        self.length, self.hop = length, length // BINS
        self.mean = torch.zeros(BINS) if mean is None else torch.as_tensor(mean, dtype=torch.float32)
        self.std = torch.ones(BINS) if std is None else torch.as_tensor(std, dtype=torch.float32)

    def stft(self, waves: torch.Tensor) -> torch.Tensor:
        window = torch.hann_window(N_FFT, device=waves.device)
        return torch.stft(waves, N_FFT, self.hop, window=window, return_complex=True)

    def log_magnitude(self, clips: torch.Tensor) -> torch.Tensor:
        """(N, 1, L) clips -> (N, 128, 128) log magnitudes."""
        return (self.stft(clips[:, 0]).abs()[:, :BINS, :BINS] + LOG_FLOOR).log()

    def statistics(self, clips: torch.Tensor, chunk: int = 256) -> tuple[list[float], list[float]]:
        """Mean and standard deviation of each frequency bin's log magnitude over all clips' frames."""
        logs = torch.cat([self.log_magnitude(c).transpose(1, 2).reshape(-1, BINS) for c in clips.split(chunk)])
        return logs.mean(0).tolist(), logs.std(0).clamp(min=1e-3).tolist()

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Clips to what the critic sees: standardised, clipped, in [-1, 1]."""
        mean, std = self.mean.to(clips.device)[:, None], self.std.to(clips.device)[:, None]
        z = (self.log_magnitude(clips) - mean) / std
        return (z.clamp(-CLIP_STD, CLIP_STD) / CLIP_STD).unsqueeze(1)

    def inverse(self, spectrograms: torch.Tensor, iterations: int) -> torch.Tensor:
        """(N, 1, 128, 128) in [-1, 1] -> (N, 1, L) clips in [-1, 1] (fast Griffin-Lim from zero phase)."""
        mean, std = self.mean.to(spectrograms.device)[:, None], self.std.to(spectrograms.device)[:, None]
        magnitude = (spectrograms[:, 0].float() * CLIP_STD * std + mean).exp() - LOG_FLOOR
        magnitude = nn.functional.pad(magnitude.clamp(min=0), (0, 1, 0, 1))  # the Nyquist bin and the last frame
        window = torch.hann_window(N_FFT, device=magnitude.device)
        phase = torch.ones_like(magnitude, dtype=torch.complex64)
        previous = torch.zeros_like(phase)
        momentum = 0.99
        for _ in range(iterations):
            wave = torch.istft(magnitude * phase, N_FFT, self.hop, window=window, length=self.length)
            rebuilt = self.stft(wave)
            accelerated = rebuilt - momentum / (1 + momentum) * previous
            phase = accelerated / accelerated.abs().clamp(min=1e-8)
            previous = rebuilt
        wave = torch.istft(magnitude * phase, N_FFT, self.hop, window=window, length=self.length)
        return wave.clamp(-1, 1).unsqueeze(1)


class WithLabels(nn.Module):
    """An image network called as net(x, labels): labels go to conditional networks and are ignored otherwise."""

    def __init__(self, net: nn.Module, conditional: bool):
        super().__init__()
        self.net, self.conditional = net, conditional

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x, labels) if self.conditional else self.net(x)


@dataclass
class SpecGANOptions(AudioOptions):
    griffin_lim: int = option(16, interval="[0, 1000]")  # Griffin-Lim iterations when turning spectrograms into audio
    upsample: str = option("transpose", choices=("transpose", "nearest"))  # the image generator's upsampling


@register
class SpecGAN(AudioGAN):
    """WaveGAN's game on log-magnitude spectrograms with DCGAN-style image networks; audio by Griffin-Lim."""

    name = "specgan"
    Options = SpecGANOptions
    capabilities = Capabilities(modality="audio")  # conditional with --opt conditional=true
    real_key = "spectrogram"
    # the paper's recipe, as for WaveGAN: WGAN-GP, 5 critic steps, Adam(1e-4, 0.5, 0.9), batch 64, z of 100
    preset = {"model": {"loss": "wasserstein", "penalty": "gp", "penalty_weight": 10.0, "latent_dim": 100,
                        "width": 64, "g_norm": "none", "d_norm": "none"},
              "train": {"lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.5, "beta2": 0.9, "n_critic": 5, "batch_size": 64,
                        "ema": 0.0}}
    tiny = {"data": {"source": "tones", "limit": 16}, "model": {"width": 2, "latent_dim": 8,
                                                                "options": {"length": 8192, "griffin_lim": 2}},
            "train": {"n_critic": 1}}

    def __init__(self, config, info):
        super().__init__(config, info)
        model, o = config.model, self.options
        if model.d_norm == "batch" and model.penalty == "gp":
            raise GanforgeError("model.d_norm: batch norm in the critic breaks WGAN-GP's per-sample gradient "
                                "penalty; use none, instance or spectral")
        if "spec_mean" not in info.facts:
            raise GanforgeError("model specgan: the data gave no spectrogram statistics (its load_data adds them)")
        self.spectrograms = Spectrograms(self.length, info.facts["spec_mean"], info.facts["spec_std"])
        if self.conditional:
            generator = ConditionalGenerator(model.latent_dim, self.n_classes, o.embed_dim, 1, BINS, model.width,
                                             model.g_norm)
            discriminator = ConditionalDiscriminator(1, BINS, self.n_classes, model.width, model.d_norm, True, False)
        else:
            generator = Generator(model.latent_dim, 1, BINS, model.width, model.g_norm, o.upsample)
            discriminator = Discriminator(1, BINS, model.width, model.d_norm)
        self.generator = WithLabels(generator, self.conditional)
        self.discriminator = WithLabels(discriminator, self.conditional)
        init_dcgan_weights(self)

    @classmethod
    def load_data(cls, config):
        data = super().load_data(config)
        mean, std = Spectrograms(data.length).statistics(data.waves)
        return SpectrogramSet(**{f.name: getattr(data, f.name) for f in dataclasses.fields(data)
                                 if f.name != "extra_facts"}, extra_facts={"spec_mean": mean, "spec_std": std})

    def fake(self, inputs: Batch) -> torch.Tensor:
        return self.generator(inputs["noise"], inputs.get("label"))

    def generate(self, generator: nn.Module, inputs: Batch) -> torch.Tensor:
        return self.spectrograms.inverse(generator(inputs["noise"], inputs.get("label")), self.options.griffin_lim)


class SpectrogramSet(AudioSet):
    """Clips whose training batches also carry their spectrograms (batch["spectrogram"], computed on the device)."""

    def batches(self, batch_size, device, seed, flip=False):
        return SpectrogramBatches(self, batch_size, device, seed, flip)


class SpectrogramBatches(AudioBatches):
    def __init__(self, data: SpectrogramSet, batch_size, device, seed, flip=False):
        super().__init__(data, batch_size, device, seed, flip)
        self.spectrograms = Spectrograms(data.length, data.extra_facts["spec_mean"], data.extra_facts["spec_std"])

    def next(self) -> dict[str, torch.Tensor]:
        batch = super().next()
        batch["spectrogram"] = self.spectrograms.forward(batch["audio"])
        return batch
