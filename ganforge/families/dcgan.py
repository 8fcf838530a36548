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
    # 10,000 steps: the default demo's ~4 CPU-minutes on digits (docs/results.md); channels-last: the NHWC layout
    # that oneDNN and tensor cores prefer
    preset = {"train": {"channels_last": True, "steps": 10000}}

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
