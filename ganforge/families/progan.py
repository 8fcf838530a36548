"""Progressive growing of GANs (Karras et al. 2018): training starts at 4x4 and doubles the resolution with a
linear fade-in of each new layer; pixel norm, equalised learning rate, minibatch stddev, WGAN-GP loss with drift.

Every layer is built up front (so the optimisers cover them) and the current depth and fade-in weight are a
pure function of the training step, kept as buffers so that samples, checkpoints and mid-phase resumes agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.config import option
from ganforge.families import register
from ganforge.families.kinds.noise import NoiseGAN, NoiseOptions
from ganforge.nn.dcgan import widths
from ganforge.nn.style import EqualConv2d, EqualLinear, MinibatchStd, PixelNorm


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class Growing(nn.Module):
    """Holds the schedule state shared by both networks: current depth (0 = 4x4) and fade-in weight alpha."""

    def __init__(self, max_depth: int):
        super().__init__()
        self.max_depth = max_depth
        self.register_buffer("depth", torch.tensor(max_depth))
        self.register_buffer("alpha", torch.tensor(1.0))
        self._stage: tuple[tuple, tuple[int, float]] | None = None  # the buffers' values, kept on the host

    def set_stage(self, depth: int, alpha: float) -> None:
        self.depth.fill_(depth)
        self.alpha.fill_(alpha)
        key = (id(self.depth), self.depth._version, id(self.alpha), self.alpha._version)
        self._stage = (key, (int(depth), float(torch.tensor(float(alpha)))))  # alpha as the float32 buffer holds it

    def stage(self) -> tuple[int, float]:
        """(depth, alpha) as Python numbers. Read from the buffers (a device sync on a GPU) only when they changed
        since the last read: any in-place write (set_stage, loading, the EMA copy) bumps their version counter."""
        key = (id(self.depth), self.depth._version, id(self.alpha), self.alpha._version)
        if self._stage is None or self._stage[0] != key:
            self._stage = (key, (int(self.depth), float(self.alpha)))
        return self._stage[1]


class ProGenerator(Growing):
    def __init__(self, latent_dim: int, channels: int, resolution: int, width: int):
        chans = widths(resolution * 2, width)  # at 4, 8, ..., resolution
        super().__init__(len(chans) - 1)
        self.norm = PixelNorm()
        self.first = EqualLinear(latent_dim, chans[0] * 16)  # the paper's 4x4 transposed conv from 1x1
        self.first_conv = EqualConv2d(chans[0], chans[0], 3)
        self.blocks = nn.ModuleList(nn.ModuleList([EqualConv2d(a, b, 3), EqualConv2d(b, b, 3)])
                                    for a, b in zip(chans, chans[1:]))
        self.to_rgb = nn.ModuleList(EqualConv2d(c, channels, 1) for c in chans)
        self.channels0 = chans[0]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        depth, fade = self.stage()
        alpha = self.alpha
        h = self.norm(lrelu(self.first(self.norm(z)).view(z.shape[0], self.channels0, 4, 4)))
        h = self.norm(lrelu(self.first_conv(h)))
        previous = h
        for block in self.blocks[:depth]:
            previous = h
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            for conv in block:
                h = self.norm(lrelu(conv(h)))
        rgb = self.to_rgb[depth](h)
        if depth > 0 and fade < 1:
            old = F.interpolate(self.to_rgb[depth - 1](previous), scale_factor=2, mode="nearest")
            rgb = old.lerp(rgb, alpha.to(rgb.dtype))
        # shown at the full resolution while growing: nearest upsampling keeps the current stage's pixels
        if depth < self.max_depth:
            rgb = F.interpolate(rgb, scale_factor=2 ** (self.max_depth - depth), mode="nearest")
        return rgb


class ProDiscriminator(Growing):
    def __init__(self, channels: int, resolution: int, width: int):
        chans = widths(resolution * 2, width)  # at 4, 8, ..., resolution
        super().__init__(len(chans) - 1)
        self.from_rgb = nn.ModuleList(EqualConv2d(channels, c, 1) for c in chans)
        self.blocks = nn.ModuleList(nn.ModuleList([EqualConv2d(b, b, 3), EqualConv2d(b, a, 3)])
                                    for a, b in zip(chans, chans[1:]))  # block k takes 4*2^k px down to half
        self.stddev = MinibatchStd(4, 1)
        self.last_conv = EqualConv2d(chans[0] + 1, chans[0], 3)
        self.fc = EqualLinear(chans[0] * 16, chans[0])
        self.out = EqualLinear(chans[0], 1)

    def block(self, k: int, h: torch.Tensor) -> torch.Tensor:
        for conv in self.blocks[k - 1]:
            h = lrelu(conv(h))
        return F.avg_pool2d(h, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        depth, fade = self.stage()
        alpha = self.alpha
        if depth < self.max_depth:
            x = F.avg_pool2d(x, 2 ** (self.max_depth - depth))
        h = lrelu(self.from_rgb[depth](x))
        if depth > 0:
            h = self.block(depth, h)
            if fade < 1:
                old = lrelu(self.from_rgb[depth - 1](F.avg_pool2d(x, 2)))
                h = old.lerp(h, alpha.to(h.dtype))
        for k in range(depth - 1, 0, -1):
            h = self.block(k, h)
        h = lrelu(self.last_conv(self.stddev(h)))
        return self.out(lrelu(self.fc(h.flatten(1)))).flatten()


@dataclass
class ProGANOptions(NoiseOptions):
    stage_steps: int = option(0, interval="[0, inf)")  # steps per fade-in and per stable phase; 0: grow_share of train.steps split evenly over the phases
    grow_share: float = option(1.0, interval="(0, 1]")  # with stage_steps 0: share of train.steps spent growing (4 px, then a fade-in and a stable phase per doubling, all equal); the rest trains fully grown. 1: the paper's equal phases
    drift: float = 0.001  # epsilon_drift * E[D(x)^2] keeps critic outputs near zero (paper sec. A.1)
    r1_every: int = option(16, interval="[1, inf)")  # with model.penalty r1: lazy R1 every N D steps with gamma times N (StyleGAN2 sec. 3.1); 1: every D step


@register
class ProGAN(NoiseGAN):
    """Progressive growing from 4x4 to data.resolution; see `schedule` for the depth/fade-in at each step."""

    name = "progan"
    Options = ProGANOptions
    tiny = {"model": {"options": {"stage_steps": 1}}}
    # ganforge's default for small budgets (issue 20): a `ganforge tune` search on digits (docs/tuning.md, "ProGAN's
    # preset for small budgets"): half the run grows (4 px, fade-in and stable phases), the other half trains fully
    # grown; non-saturating loss with lazy R1 (gamma 10 every 16 D steps, ~0.6x the cost of a WGAN-GP step); Adam
    # rates ~4x the paper's. Same networks, batch, betas, drift and EMA as the paper's recipe below
    preset = {"model": {"loss": "nonsaturating", "penalty": "r1", "penalty_weight": 10.0, "latent_dim": 512,
                        "width": 64, "options": {"grow_share": 0.5, "r1_every": 16}},
              "train": {"lr_g": 0.0033, "lr_d": 0.0046, "beta1": 0.0, "beta2": 0.99, "n_critic": 1, "ema": 0.999,
                        "batch_size": 16}}
    # Karras et al. 2018 sec. A.1: WGAN-GP (lambda 10) + drift 0.001, Adam(0.001, 0, 0.99), n_critic 1, 512-d z,
    # generator EMA 0.999, no batch norm (pixel norm in G), equal growth phases over the whole run; the default
    # before issue 20 (`--preset paper`)
    presets = {"paper": {"model": {"loss": "wasserstein", "penalty": "gp", "penalty_weight": 10.0, "latent_dim": 512,
                                   "width": 64},
                         "train": {"lr_g": 0.001, "lr_d": 0.001, "beta1": 0.0, "beta2": 0.99, "n_critic": 1,
                                   "ema": 0.999, "batch_size": 16}}}

    def __init__(self, config, info):
        super().__init__(config, info)
        model = config.model
        self.generator = ProGenerator(model.latent_dim, info.channels, info.resolution, model.width)
        self.discriminator = ProDiscriminator(info.channels, info.resolution, model.width)
        self.max_depth = self.generator.max_depth
        periods = 1 + 2 * self.max_depth  # 4x4 stable, then a fade-in and a stable phase per doubling
        growing = int(config.train.steps * self.options.grow_share)
        self.stage_steps = self.options.stage_steps or max(1, growing // periods)

    def schedule(self, step: int) -> tuple[int, float]:
        """(depth, alpha) at `step`: depth 0 is 4x4; alpha rises linearly from 0 to 1 while a new depth fades in."""
        period = step // self.stage_steps
        if period == 0:
            return 0, 1.0
        depth = (period + 1) // 2
        if depth > self.max_depth:
            return self.max_depth, 1.0
        fading = period % 2 == 1
        return depth, (step - period * self.stage_steps) / self.stage_steps if fading else 1.0

    def r1_interval(self) -> int:
        return self.options.r1_every

    def on_step(self, step: int) -> None:
        super().on_step(step)
        depth, alpha = self.schedule(step)
        self.generator.set_stage(depth, alpha)
        self.discriminator.set_stage(depth, alpha)

    def discriminator_terms(self, real_logits, batch):
        """The drift term epsilon * E[D(x)^2] on the real logits the D loss already computed (paper sec. A.1)."""
        if self.options.drift <= 0:
            return None, {}
        return self.options.drift * real_logits.float().square().mean(), {}

    def loss(self, phase, batch):
        loss, logs = super().loss(phase, batch)
        if phase == "G":  # once per step: the trainer adds up the phases' logs (both phases gave 2x the size)
            logs["resolution"] = torch.tensor(4.0 * 2 ** self.generator.stage()[0])
        return loss, logs
