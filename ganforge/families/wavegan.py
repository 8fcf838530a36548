"""WaveGAN (Donahue, McAuley & Puckette 2019, "Adversarial Audio Synthesis"): DCGAN flattened to one dimension
(kernel 25, stride 4) for raw waveforms, phase shuffle in the discriminator, WGAN-GP; optionally class-conditional
(`--opt conditional=true`: a label embedding in G, a projection head in D)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganforge.config import option
from ganforge.errors import GanforgeError
from ganforge.families import register
from ganforge.families.base import Batch, Capabilities
from ganforge.families.kinds.audio import AudioGAN, AudioOptions
from ganforge.nn.audio import (INITS, MINIBATCH_STD, SpectrogramClassifier, WaveDiscriminator, WaveGenerator, layout,
                               stft_power)


@dataclass
class WaveGANOptions(AudioOptions):
    phase_shuffle: int = option(2, interval="[0, 8]")  # radius n of the discriminator's phase shuffle (paper: 2)
    upsample: str = option("transpose", choices=("transpose", "nearest"))  # transposed conv (paper) or nearest +
    # conv
    post_filter: int = option(0, interval="[0, 2048]")  # taps of a learned output filter (paper's option: 512); 0 off
    minibatch_std: str = option("off", choices=MINIBATCH_STD)  # a minibatch standard-deviation channel before the
    # critic's last convolution (ProGAN): batch (groups of 4 clips) or class (the clips of one class in the batch;
    # conditional runs: against a generator that makes one clip per class); off
    r1_every: int = option(1, interval="[1, inf)")  # with model.penalty r1: lazy R1 (StyleGAN2 sec. 3.1), evaluated
    # every N D steps with its weight times N; 1: every D step
    init: str = option("he", choices=INITS)  # convolution weights: he (keeps the activations' scale), glorot (the
    # released WaveGAN code's TensorFlow default) or torch (PyTorch's default, which shrinks them ~2x per layer)
    # conditional runs only (unconditional ones ignore them, like embed_dim):
    projection: bool = True  # the critic's class projection head (Miyato & Koyama 2018)
    aux_weight: float = option(0.0, interval="[0, inf)")  # AC-GAN term (Odena et al. 2017): the critic also
    # classifies real clips (cross-entropy, this weight) and the generator is pushed to make clips it classifies as
    # the class asked for; 0 off
    class_norm: bool = False  # class-conditional batch norm in every generator layer (gain and bias per class)
    aux_fake_class: bool = False  # the AC classifier gets one more class, "generated": D also learns G's clips as
    # that class, so G must make clips D's classifier takes for the requested digit rather than for a generated one
    # (K+1 classes: Salimans et al. 2016; AM-GAN, Zhou et al. 2018); without it the classifier sees real clips only
    # and G can satisfy it without making the digit
    aux_input: str = option("wave", choices=("wave", "spectrogram"))  # what the AC classifier reads: the critic's
    # waveform features (wave), or the clip's log-magnitude spectrogram through its own small network
    # (spectrogram: what the clip sounds like; learns FSDD's real digits ~6x faster, yet in a pilot G still learnt
    # to satisfy it without making the digit: docs/results.md, audio)
    aux_g_factor: float = option(1.0, interval="[0, inf)")  # G's AC-GAN term is aux_weight x this (D's stays
    # aux_weight): > 1 lets the class pull on G match the adversarial one (whose gradient on the clips is ~3x the
    # AC term's in the default run)
    mismatch: float = option(0.0, interval="[0, inf)")  # matching-aware critic (Reed et al. 2016, GAN-CLS): real
    # clips paired with a wrong class (the label plus a random 1..K-1, modulo K) count as fake in D's loss through
    # the projection head, this weight; teaches the projection to check that clip and class match (the default
    # run's projection scored real clips 22.9 with their own label and 16.2 with a wrong one); logged as
    # `d_mismatch` (their mean logit); needs projection; 0 off
    mode_seeking: float = option(0.0, interval="[0, inf)")  # mode-seeking term (MSGAN, Mao et al. 2019) in G's
    # loss, this weight: conditional GANs learn to ignore the noise (one clip per class); G's batch is made of pairs
    # with the same class and different noise, and G minimises weight / (d_x / d_z + 1e-5), d_x the mean absolute
    # difference of a pair's clips relative to their mean absolute amplitude (loudness does not count as diversity),
    # d_z that of their noise; logged as `mode_spread` (d_x / d_z); 0 off
    spectral_match: float = option(0.0, interval="[0, inf)")  # spectral realism term in G's loss, this weight:
    # the mean squared difference, over STFT bins (n_fft 256, hop 128), of the log mean power spectrum of G's clips
    # and of the real batch's clips, class by class in conditional runs (the classes in both); G's clips lacked
    # the real clips' energy above 1 kHz where fricatives live (docs/results.md, audio, session 4); logged as
    # `spectral_gap`; 0 off


def fake_side(kind: str, logits: torch.Tensor) -> torch.Tensor:
    """The fake half of `losses.discriminator_loss(kind, ...)` for these logits."""
    if kind in ("nonsaturating", "minimax"):
        return F.softplus(logits).mean()
    if kind == "hinge":
        return F.relu(1.0 + logits).mean()
    if kind == "wasserstein":
        return logits.mean()
    return 0.5 * logits.square().mean()  # least-squares


def mode_spread(clips: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """MSGAN's ratio for pairs (i, i + n // 2): mean |x_i - x_j| relative to the pair's mean |x|, over
    mean |z_i - z_j|."""
    half = clips.shape[0] // 2
    a, b = clips[:half], clips[half:2 * half]
    relative = (a - b).abs().mean() / (0.5 * (a.abs().mean() + b.abs().mean()) + 1e-8)
    return relative / (noise[:half] - noise[half:2 * half]).abs().mean()


# 32 ms frames at 8 kHz: the STFT of the scorer and of the AC classifier
SPECTRUM_FFT, SPECTRUM_HOP = SpectrogramClassifier.N_FFT, SpectrogramClassifier.HOP
SPECTRUM_FLOOR = 1e-3  # power floor of the log: under every real FSDD class's mean power in any bin (>= 4e-3),
# so that it bounds the gradient on near-empty bins without hiding a bin the real clips fill


def spectral_gap(fake: torch.Tensor, real: torch.Tensor, fake_labels: torch.Tensor | None = None,
                 real_labels: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over frequency bins (and over the classes both batches hold, when labels are given) of the squared
    difference of log(mean power spectrum + floor) of `fake` and `real` (N, 1, L) clips; 0 for equal spectra."""
    window = torch.hann_window(SPECTRUM_FFT, device=fake.device)
    spectra = [stft_power(x, SPECTRUM_FFT, SPECTRUM_HOP, window).mean(-1) for x in (fake, real)]  # (N, bins)
    if fake_labels is None:
        means = [s.mean(0, keepdim=True) for s in spectra]
    else:
        classes = max(int(fake_labels.max()), int(real_labels.max())) + 1
        onehots = [F.one_hot(y, classes).float() for y in (fake_labels, real_labels)]
        shared = (onehots[0].sum(0) > 0) & (onehots[1].sum(0) > 0)
        means = [(h.t() @ s)[shared] / h.sum(0)[shared, None] for h, s in zip(onehots, spectra)]
    fake_log, real_log = (torch.log(m + SPECTRUM_FLOOR) for m in means)
    return (fake_log - real_log).square().mean()


# the session-6 default (--preset s6): a recipe for a CPU budget (issue 15; docs/results.md "Audio"): hinge loss
# with one critic step (5x cheaper per G step than WGAN-GP's five), width 8 (d = 8 instead of 64), batch 32,
# He-initialised convolutions, batch norm in G, Adam(5e-4 G / 1e-3 D, 0.5, 0.9), EMA of G; conditional runs add
# class-conditional batch norm in G and the AC-GAN term (weight 1, with a "generated" class) next to the
# projection head in D; learning rates constant for half the run, then linearly to 0
S6_PRESET = {"model": {"loss": "hinge", "penalty": "none", "latent_dim": 100, "width": 8, "g_norm": "batch",
                       "d_norm": "none", "options": {"init": "he", "class_norm": True, "aux_weight": 1.0,
                                                     "aux_fake_class": True, "lr_decay": 0.5,
                                                     "lr_decay_shape": "linear", "lr_floor": 0.0}},
             "train": {"lr_g": 5e-4, "lr_d": 1e-3, "beta1": 0.5, "beta2": 0.9, "n_critic": 1, "batch_size": 32,
                       "ema": 0.999, "steps": 3000}}

# the session-7 default (--preset s7): the s6 recipe at width 12 in both networks, ~1.3-1.7x its CPU per step
# (20.3-23.8 single-threaded CPU-minutes for 3,000 conditional FSDD steps); conditional FSDD, 4 seeds: 52.2 / 70.0 /
# 60.2 / 40.0% requested-digit accuracy (s6, 3 seeds: 55.6 / 61.0 / 46.2%): docs/results.md, session 7
S7_PRESET = {"model": S6_PRESET["model"] | {"width": 12}, "train": S6_PRESET["train"]}
# --preset r1 (session 8): s7 plus lazy R1 in the critic (Mescheder et al. 2018; StyleGAN2's lazy form)
R1_PRESET = {"model": S7_PRESET["model"] | {"penalty": "r1", "penalty_weight": 0.05,
                                            "options": S7_PRESET["model"]["options"] | {"r1_every": 4}},
             "train": S7_PRESET["train"]}
# the session-9 default (--preset s9): s7 plus the spectral realism term (spectral_match 5: its gradient on G's
# clips ~half the adversarial one's in a pilot); conditional FSDD, 4 seeds: 51.2 / 70.0 / 40.0 / 66.8% (mean 57.0%,
# 0% near-silent; s7 55.6%), and over steps 1,500-3,000 a curve mean of 61.1% (s7 53.6%): docs/results.md, session 9
S9_PRESET = {"model": S7_PRESET["model"] | {"options": S7_PRESET["model"]["options"] | {"spectral_match": 5.0}},
             "train": S7_PRESET["train"]}
# the session-10 default (--preset s10): s9 with a constant learning rate (no decay; every run with the decay fell
# during it): conditional FSDD, fresh seeds 4-7: 59.6 / 60.0 / 78.2 / 67.8% (mean 66.4%, 0% near-silent), ~13.4
# single-threaded CPU-minutes on an AMD EPYC; s9 trained 6,000 steps with the decay over its second half: 50.2 /
# 60.0 / 69.4 / 60.0% on seeds 0-3 (mean 59.9%; `--preset s9 --steps 6000`): docs/results.md, session 10
S10_PRESET = {"model": S9_PRESET["model"] | {"options": S9_PRESET["model"]["options"] | {"lr_decay": 1.0}},
              "train": S9_PRESET["train"]}


@register
class WaveGAN(AudioGAN):
    """Raw-waveform GAN: 1-D transposed convolutions up to 8,192-65,536 samples, phase-shuffled critic, WGAN-GP."""

    name = "wavegan"
    Options = WaveGANOptions
    capabilities = Capabilities(modality="audio")  # conditional with --opt conditional=true
    # the default: the s10 recipe (above; the s7 recipe plus spectral_match 5, no lr decay). `--preset r1` is s7 with
    # lazy R1 in the critic (gamma 0.05 every 4 critic steps): D's real logits stay at ~2-4 instead of climbing to
    # ~30, and no seed made near-silent clips, but over seeds 0-3 its requested-digit accuracy (58.4 / 48.6 / 50.2 /
    # 62.6%, mean 55.0%) is level with s7's (52.2 / 70.0 / 60.2 / 40.0%, mean 55.6%) at ~1.15x the CPU per step:
    # docs/results.md, session 8
    preset = S10_PRESET
    # --preset paper: the paper's table 4: WGAN-GP (lambda 10), 5 critic steps, Adam(1e-4, 0.5, 0.9), batch 64, z of
    # 100, d = 64, no batch norm, Glorot-initialised convolutions (the released code's TensorFlow default); the
    # conditional variant with a label embedding in G and the projection head alone in D
    presets = {"paper": {"model": {"loss": "wasserstein", "penalty": "gp", "penalty_weight": 10.0, "latent_dim": 100,
                                   "width": 64, "g_norm": "none", "d_norm": "none",
                                   "options": {"init": "glorot", "class_norm": False, "aux_weight": 0.0,
                                               "aux_fake_class": False, "lr_decay": 1.0}},
                         "train": {"lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.5, "beta2": 0.9, "n_critic": 5,
                                   "batch_size": 64, "ema": 0.0}},
               "s6": S6_PRESET, "s7": S7_PRESET, "r1": R1_PRESET, "s9": S9_PRESET,
               "s10": S10_PRESET}
    tiny = {"data": {"source": "tones", "limit": 16}, "model": {"width": 2, "latent_dim": 8,
                                                                "options": {"length": 8192}},
            "train": {"n_critic": 1}}

    def __init__(self, config, info):
        super().__init__(config, info)
        model, o = config.model, self.options
        if model.g_norm not in ("none", "batch"):
            raise GanforgeError(f"model.g_norm: wavegan's generator takes none or batch, got '{model.g_norm}'")
        if model.d_norm not in ("none", "spectral"):
            raise GanforgeError(f"model.d_norm: wavegan's critic takes none or spectral, got '{model.d_norm}'")
        layout(self.length)
        if o.minibatch_std == "class" and not self.conditional:
            raise GanforgeError("model.options.minibatch_std: 'class' needs a conditional run (conditional=true); "
                                "use 'batch' for an unconditional one")
        if self.conditional and o.mismatch and not o.projection:
            raise GanforgeError("model.options.mismatch: the matching-aware term scores wrong classes through the "
                                "projection head; it needs projection=true")
        if self.conditional and not o.projection and not o.aux_weight:
            raise GanforgeError("model.options.projection: with projection=false the critic needs the AC-GAN term "
                                "(aux_weight > 0) to see the classes")
        self.aux_weight = o.aux_weight if self.conditional else 0.0
        self.generator = WaveGenerator(model.latent_dim, self.length, model.width, self.n_classes, o.embed_dim,
                                       o.upsample, model.g_norm == "batch", o.post_filter, o.class_norm, o.init)
        self.discriminator = WaveDiscriminator(self.length, model.width, self.n_classes, o.phase_shuffle,
                                               model.d_norm == "spectral", o.projection, self.aux_weight > 0, o.init,
                                               fake_class=o.aux_fake_class, aux_input=o.aux_input,
                                               minibatch_std=o.minibatch_std)
        self._class_logits: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._generated: tuple[torch.Tensor, Batch] | None = None  # (clips, inputs) of the latest fake call
        self._mismatched: torch.Tensor | None = None  # D's logits of real clips with wrong classes (mismatch)
        self._phase: str | None = None  # the phase whose loss is being computed

    def r1_interval(self) -> int:
        return self.options.r1_every

    def generator_inputs(self, batch: Batch) -> Batch:
        """The training batch's noise and labels; with `mode_seeking`, the second half of the batch repeats the
        first half's labels (pairs i, i + n // 2: same class, different noise)."""
        inputs = super().generator_inputs(batch)
        if self.options.mode_seeking and "label" in inputs:
            labels, half = inputs["label"].clone(), inputs["label"].shape[0] // 2
            labels[half:2 * half] = labels[:half]
            inputs["label"] = labels
        return inputs

    def discriminate(self, x: torch.Tensor, batch: Batch) -> torch.Tensor:
        if "noise" in batch:
            self._generated = (x, batch)
        mismatch = self.conditional and self.options.mismatch and self._phase == "D" and "noise" not in batch
        if not self.aux_weight and not mismatch:
            return super().discriminate(x, batch)
        labels = self.labels(batch)
        critic = self.discriminator
        features = critic.encode(x, labels)  # = critic(x, ...), keeping the features for the terms below
        logit = critic.head(features, labels if self.options.projection else None)
        if self.aux_weight:
            classes = critic.classify(x if critic.classify_spectrogram else features)
            self._class_logits.append((classes, labels))
        if mismatch:  # the same real clips with a wrong class
            offset = torch.randint(1, self.n_classes, labels.shape, device=labels.device)
            self._mismatched = critic.head(features, (labels + offset) % self.n_classes)
        return logit

    def loss(self, phase: str, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The adversarial loss, plus with `aux_weight` the AC-GAN term on the critic's first call of the phase:
        the real clips in the D phase (D learns to classify real digits), the generated ones in the G phase (G makes
        clips D classifies as the class asked for)."""
        self._class_logits.clear()
        self._generated, self._mismatched, self._phase = None, None, phase
        loss, logs = super().loss(phase, batch)
        self._phase = None
        if self._mismatched is not None:
            loss = loss + self.options.mismatch * fake_side(self.config.model.loss, self._mismatched)
            logs["d_mismatch"] = self._mismatched.detach().mean()
            self._mismatched = None
        if phase == "G" and self.options.mode_seeking and self._generated is not None:
            clips, inputs = self._generated
            spread = mode_spread(clips, inputs["noise"])
            loss = loss + self.options.mode_seeking / (spread + 1e-5)
            logs["mode_spread"] = spread.detach()
        if phase == "G" and self.options.spectral_match and self._generated is not None:
            clips, inputs = self._generated
            gap = spectral_gap(clips, batch[self.real_key], self.labels(inputs), self.labels(batch))
            loss = loss + self.options.spectral_match * gap
            logs["spectral_gap"] = gap.detach()
        self._generated = None
        if self.aux_weight:
            classes, labels = self._class_logits[0]
            term = F.cross_entropy(classes, labels)
            logs["aux_real" if phase == "D" else "aux_fake"] = term.detach()
            if phase == "D":
                logs["aux_acc"] = (classes.detach().argmax(1) == labels).float().mean()
                if self.options.aux_fake_class:  # the D phase's second critic call: the generated clips
                    generated = self._class_logits[1][0]
                    seen = F.cross_entropy(generated, torch.full_like(labels, self.n_classes))
                    term = term + seen
                    logs["aux_generated"] = seen.detach()
            loss = loss + self.aux_weight * (self.options.aux_g_factor if phase == "G" else 1.0) * term
        self._class_logits.clear()
        return loss, logs
