"""DCGAN (Radford et al. 2016): transposed-convolution generator and strided-convolution discriminator."""

from __future__ import annotations

from dataclasses import dataclass

from ganforge.config import option
from ganforge.errors import GanforgeError
from ganforge.families import register
from ganforge.families.kinds.noise import NoiseGAN, NoiseOptions
from ganforge.nn import init_dcgan_weights
from ganforge.nn.dcgan import Discriminator, Generator
from ganforge.nn.layers import check_norm


@dataclass
class DCGANOptions(NoiseOptions):
    upsample: str = option("transpose", choices=("transpose", "resize"))  # resize: nearest resize + conv, avoids
    # checkerboard artefacts


@register
class DCGAN(NoiseGAN):
    """Unconditional DCGAN for any power-of-two resolution from 8 to 1024."""

    name = "dcgan"
    Options = DCGANOptions
    # ganforge's default, tuned for small budgets (issue 20): the best trial of a `ganforge tune` search on digits
    # (benchmarks/presets/, docs/tuning.md): hinge loss, spectral norm instead of batch norm in D, Adam beta1 0 and a
    # generator learning rate ~16x the discriminator's; 9,000 steps (spectral norm makes a step ~5% dearer, so the
    # demo takes no longer than the paper recipe's 10,000). channels-last: the NHWC layout oneDNN and tensor cores
    # prefer
    preset = {"model": {"loss": "hinge", "d_norm": "spectral"},
              "train": {"lr_g": 2.6e-3, "lr_d": 1.6e-4, "beta1": 0.0, "channels_last": True, "steps": 9000}}
    # the DCGAN paper's recipe (the default demo before issue 20): non-saturating loss, batch norm in G and D,
    # Adam 2e-4 / (0.5, 0.999) for both networks, 10,000 steps
    presets = {"paper": {"model": {"loss": "nonsaturating", "d_norm": "batch"},
                         "train": {"lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "channels_last": True, "steps": 10000}}}

    def __init__(self, config, info):
        super().__init__(config, info)
        model = config.model
        if not 8 <= info.resolution <= 1024:  # one stride-2 stage per doubling, widest (width * 8) at 4x4
            raise GanforgeError(f"data.resolution: dcgan supports 8 to 1024 pixels, got {info.resolution}")
        check_norm(model.g_norm, "model.g_norm")
        check_norm(model.d_norm, "model.d_norm")
        self.generator = Generator(model.latent_dim, info.channels, info.resolution, model.width, model.g_norm,
                                   self.options.upsample)
        self.discriminator = Discriminator(info.channels, info.resolution, model.width, model.d_norm)
        init_dcgan_weights(self)
