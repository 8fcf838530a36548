"""Wasserstein GAN with weight clipping (Arjovsky et al. 2017) and with a gradient penalty (Gulrajani et al. 2017),
both on DCGAN-shaped networks."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ganforge.config import option
from ganforge.errors import GanforgeError
from ganforge.families import register
from ganforge.families.base import Phase
from ganforge.families.dcgan import DCGAN, DCGANOptions


@dataclass
class WGANOptions(DCGANOptions):
    clip: float = option(0.01, interval="(0, inf)")  # critic weights are clipped to [-clip, clip] after every critic step


@register
class WGAN(DCGAN):
    """WGAN: Wasserstein loss, critic weights clipped after each critic step, RMSprop; 1 critic step per G step by
    default (tuned for small budgets), the paper's 5 with `--preset paper`."""

    name = "wgan"
    Options = WGANOptions
    # Algorithm 1 of the paper: RMSprop, alpha = 5e-5, c = 0.01 (the clip option's default), n_critic = 5, batch 64
    # (the default before issue 20's retune; exactly the config it resolved to)
    presets = {"paper": {"model": {"loss": "wasserstein", "penalty": "none", "g_norm": "batch", "d_norm": "batch"},
                         "train": {"lr_g": 5e-5, "lr_d": 5e-5, "n_critic": 5, "batch_size": 64}}}
    # ganforge's default, tuned for small budgets (issue 20): the best trial of a `ganforge tune` search on digits at
    # 60 CPU seconds per trial (benchmarks/presets/tune-wgan-digits, docs/tuning.md): the paper's loss, RMSprop,
    # clipping and networks with one critic step per generator step, RMSprop rates 5e-4 / 1.7e-3 and c = 0.022
    preset = {"model": presets["paper"]["model"] | {"options": {"clip": 0.022}},
              "train": presets["paper"]["train"] | {"lr_g": 5e-4, "lr_d": 1.7e-3, "n_critic": 1}}

    def __init__(self, config, info):
        super().__init__(config, info)

    def phases(self) -> list[Phase]:
        t = self.config.train
        return [Phase("D", "discriminator", t.lr_d, (t.beta1, t.beta2), repeat=t.n_critic, optimizer="rmsprop"),
                Phase("G", "generator", t.lr_g, (t.beta1, t.beta2), optimizer="rmsprop")]

    @torch.no_grad()
    def after_step(self, phase: str) -> None:
        if phase == "D":
            c = self.options.clip
            for p in self.discriminator.parameters():
                p.clamp_(-c, c)


@register
class WGANGP(DCGAN):
    """WGAN-GP: Wasserstein loss with a per-sample gradient penalty; no batch norm in the critic."""

    name = "wgan-gp"
    Options = DCGANOptions
    # ganforge's default, tuned for small budgets (issue 20): the best trial of a `ganforge tune` search on digits at
    # 60 CPU seconds per trial (benchmarks/presets/tune-wgan-gp-digits, docs/tuning.md): the paper's loss, penalty
    # and networks with one critic step per generator step and Adam rates 3.6e-4 / 2.2e-4
    preset = {"model": {"loss": "wasserstein", "penalty": "gp", "penalty_weight": 10.0, "g_norm": "batch",
                        "d_norm": "none"},
              "train": {"lr_g": 3.6e-4, "lr_d": 2.2e-4, "beta1": 0.0, "beta2": 0.9, "n_critic": 1}}
    # Algorithm 1 of the paper: lambda = 10, n_critic = 5, Adam(1e-4, 0, 0.9); the critic has no batch norm (the
    # default before issue 20's retune)
    presets = {"paper": {"model": preset["model"],
                         "train": {"lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.0, "beta2": 0.9, "n_critic": 5}}}

    def __init__(self, config, info):
        super().__init__(config, info)
        if config.model.d_norm == "batch" and config.model.penalty == "gp":
            raise GanforgeError("model.d_norm: batch norm in the critic breaks WGAN-GP's per-sample gradient "
                                "penalty; use none, instance or spectral")
