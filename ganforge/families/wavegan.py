"""WaveGAN (Donahue, McAuley & Puckette 2019, "Adversarial Audio Synthesis"): DCGAN flattened to one dimension
(kernel 25, stride 4) for raw waveforms, phase shuffle in the discriminator, WGAN-GP; optionally class-conditional
(`--opt conditional=true`: a label embedding in G, a projection head in D)."""

from __future__ import annotations

from dataclasses import dataclass

from ganforge.config import option
from ganforge.errors import GanforgeError
from ganforge.families import register
from ganforge.families.base import Capabilities
from ganforge.families.kinds.audio import AudioGAN, AudioOptions
from ganforge.nn.audio import WaveDiscriminator, WaveGenerator, layout


@dataclass
class WaveGANOptions(AudioOptions):
    phase_shuffle: int = option(2, interval="[0, 8]")  # radius n of the discriminator's phase shuffle (paper: 2)
    upsample: str = option("transpose", choices=("transpose", "nearest"))  # transposed conv (paper) or nearest +
    # conv
    post_filter: int = option(0, interval="[0, 2048]")  # taps of a learned output filter (paper's option: 512); 0 off


@register
class WaveGAN(AudioGAN):
    """Raw-waveform GAN: 1-D transposed convolutions up to 8,192-65,536 samples, phase-shuffled critic, WGAN-GP."""

    name = "wavegan"
    Options = WaveGANOptions
    capabilities = Capabilities(modality="audio")  # conditional with --opt conditional=true
    # the paper's table 4: WGAN-GP (lambda 10), 5 critic steps, Adam(1e-4, 0.5, 0.9), batch 64, z of 100, d = 64
    preset = {"model": {"loss": "wasserstein", "penalty": "gp", "penalty_weight": 10.0, "latent_dim": 100,
                        "width": 64, "g_norm": "none", "d_norm": "none"},
              "train": {"lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.5, "beta2": 0.9, "n_critic": 5, "batch_size": 64,
                        "ema": 0.0}}
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
        self.generator = WaveGenerator(model.latent_dim, self.length, model.width, self.n_classes, o.embed_dim,
                                       o.upsample, model.g_norm == "batch", o.post_filter)
        self.discriminator = WaveDiscriminator(self.length, model.width, self.n_classes, o.phase_shuffle,
                                               model.d_norm == "spectral")
