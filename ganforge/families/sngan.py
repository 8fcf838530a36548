"""SNGAN (Miyato et al. 2018): ResNet generator, spectrally normalised ResNet discriminator, hinge loss."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.errors import GanforgeError
from ganforge.families import register
from ganforge.config import option
from ganforge.families.kinds.noise import JOINT_CRITIC, NoiseGAN, NoiseOptions
from ganforge.nn.resblocks import DiscriminatorBlock, GeneratorBlock, ProjectionHead


class ResNetGenerator(nn.Module):
    """z -> linear 4x4 -> one up-block per doubling -> BN-ReLU-conv3x3-tanh (SNGAN appendix, CIFAR ResNet)."""

    def __init__(self, latent_dim: int, channels: int, resolution: int, width: int):
        super().__init__()
        self.width = width
        blocks = int(math.log2(resolution)) - 2
        self.linear = nn.Linear(latent_dim, 16 * width)
        self.blocks = nn.ModuleList(GeneratorBlock(width, width) for _ in range(blocks))
        self.out = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.linear(z).view(z.shape[0], self.width, 4, 4)
        for block in self.blocks:
            h = block(h)
        return self.out(h)


class ResNetDiscriminator(nn.Module):
    """Down-blocks to 4x4 (or 8x8), two plain blocks, ReLU, global sum pooling, linear (SNGAN appendix)."""

    def __init__(self, channels: int, resolution: int, width: int):
        super().__init__()
        downs = max(1, int(math.log2(resolution)) - 3)
        blocks = [DiscriminatorBlock(channels, width, first=True)]
        blocks += [DiscriminatorBlock(width, width) for _ in range(downs - 1)]
        blocks += [DiscriminatorBlock(width, width, downsample=False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.head = ProjectionHead(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.blocks(x)).sum(dim=(2, 3)))


@dataclass
class SNGANOptions(NoiseOptions):
    joint_critic: str = option("auto", choices=tuple(JOINT_CRITIC))  # on: D on real and fake in one pass
    # (torch.cat): one spectral-norm power iteration per D update instead of two (the paper's Algorithm 1; its
    # chainer code calls D twice) and half the kernel launches; auto (default): on off the CPU, off on it. On a CPU
    # it saved no time and at 299 steps on digits scored FD 6.38 vs 5.89 (issue 20); on an H200 it ran 1.6x faster


@register
class SNGAN(NoiseGAN):
    """Spectral normalisation in every discriminator layer, ResNet blocks, hinge loss."""

    name = "sngan"
    Options = SNGANOptions
    # ganforge's default, tuned for small budgets (issue 20): the best trial of a `ganforge tune` search on digits at
    # 60 CPU seconds per trial (benchmarks/presets/tune-sngan-digits, docs/tuning.md): the paper's networks, loss
    # and n_dis 5, with a generator rate ~4.5x the discriminator's and Adam beta1 0.5
    preset = {"model": {"loss": "hinge", "penalty": "none", "latent_dim": 128, "width": 128, "d_norm": "spectral",
                        "g_norm": "batch"},
              "train": {"lr_g": 7e-4, "lr_d": 1.6e-4, "beta1": 0.5, "beta2": 0.9, "n_critic": 5}}
    # Table 1 setting for ResNets (Miyato et al. 2018): hinge, Adam(2e-4, 0, 0.9), n_dis 5, 128-d z, 128 channels,
    # with D run twice per update on every device (the authors' chainer code); the default before issue 20's retune
    presets = {"paper": {"model": preset["model"] | {"options": {"joint_critic": "off"}},
                         "train": {"lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.0, "beta2": 0.9, "n_critic": 5}}}

    def __init__(self, config, info):
        super().__init__(config, info)
        if not 8 <= info.resolution <= 256:
            raise GanforgeError(f"data.resolution: sngan supports 8 to 256 pixels, got {info.resolution}")
        model = config.model
        self.joint_critic = JOINT_CRITIC[self.options.joint_critic]
        self.generator = ResNetGenerator(model.latent_dim, info.channels, info.resolution, model.width)
        self.discriminator = ResNetDiscriminator(info.channels, info.resolution, model.width)
