"""BigGAN (Brock et al. 2019): class-conditional batch norm fed by a shared class embedding and a hierarchical
latent (one chunk of z per block), self-attention, spectral norm in both networks, a projection discriminator,
hinge loss, orthogonal regularisation of G, and the truncation trick."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.config import option
from ganforge.errors import GanforgeError
from ganforge.families import register
from ganforge.families.base import Batch, Capabilities, Truncation
from ganforge.families.kinds.noise import JOINT_CRITIC, Conditional, NoiseGAN, NoiseOptions
from ganforge.nn.attention import SelfAttention
from ganforge.nn.layers import spectral
from ganforge.nn.resblocks import DiscriminatorBlock, GeneratorBlock, ProjectionHead, orthogonal_regularization


def block_widths(resolution: int, width: int) -> list[int]:
    """Channels at 4, 8, ..., resolution: width * 4 at 4x4 halving to width (BigGAN's ch multipliers, capped)."""
    n = int(math.log2(resolution)) - 1
    return [width * min(4, 2 ** (n - 1 - i)) if i < n - 1 else width for i in range(n)]


def truncated(z: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
    """Map standard-normal z to the normal truncated to its central `psi` of probability mass, i.e. to [-t, t]
    with t = Phi^-1((1 + psi) / 2), through the CDF: the same draw lands on the same quantile, so a lower psi
    shrinks every sample deterministically (BigGAN sec. 3.1 truncates at a threshold t). psi = 1 leaves z as it
    is, psi = 0 gives the mode (zeros), as StyleGAN's psi does for w."""
    psi = psi.view(-1, *([1] * (z.ndim - 1))).to(z.dtype)
    low = (1 - psi.clamp(0, 1)) / 2  # = Phi(-t)
    exporting = torch.onnx.is_in_onnx_export()  # ONNX has erf but neither ndtr nor an inverse normal CDF
    cdf = 0.5 * (1 + torch.erf(z * 0.5 ** 0.5)) if exporting else torch.special.ndtr(z)
    u = (low + cdf * (1 - 2 * low)).clamp(1e-6, 1 - 1e-6)
    return torch.where(psi >= 1, z, normal_quantile(u) if exporting else torch.special.ndtri(u))


# P. J. Acklam's rational approximation of the normal quantile (relative error below 1.2e-9), in ONNX's operators
ACKLAM_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
            -3.066479806614716e+01, 2.506628277459239e+00)
ACKLAM_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
            -1.328068155288572e+01, 1.0)
ACKLAM_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
            4.374664141464968e+00, 2.938163982698783e+00)
ACKLAM_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00, 1.0)


def _polynomial(coefficients: tuple[float, ...], x: torch.Tensor) -> torch.Tensor:
    out = torch.full_like(x, coefficients[0])
    for c in coefficients[1:]:
        out = out * x + c
    return out


def normal_quantile(u: torch.Tensor) -> torch.Tensor:
    """Phi^-1(u) for u in (0, 1), as torch.special.ndtri, from elementary operators only (exports to ONNX)."""
    dtype, u = u.dtype, u.double()  # the rational functions cancel digits: float32 would lose 3e-4
    q = u - 0.5
    r = q * q
    central = q * _polynomial(ACKLAM_A, r) / _polynomial(ACKLAM_B, r)
    tail = torch.sqrt(-2 * torch.log(torch.minimum(u, 1 - u)))
    tails = _polynomial(ACKLAM_C, tail) / _polynomial(ACKLAM_D, tail)
    return torch.where(q.abs() <= 0.5 - 0.02425, central, torch.where(q < 0, tails, -tails)).to(dtype)


class BigGenerator(nn.Module):
    def __init__(self, latent_dim: int, n_classes: int, shared_dim: int, channels: int, resolution: int, width: int,
                 attention: int):
        super().__init__()
        chans = block_widths(resolution, width)
        self.n_blocks = len(chans) - 1
        self.chunk = latent_dim // (self.n_blocks + 1)
        if self.chunk < 1:
            raise GanforgeError(f"model.latent_dim {latent_dim} is too small to split over {self.n_blocks + 1} chunks")
        self.latent_dim = latent_dim
        self.shared = nn.Embedding(n_classes, shared_dim)
        self.linear = spectral(nn.Linear(latent_dim - self.chunk * self.n_blocks, chans[0] * 16), "spectral")
        cond = shared_dim + self.chunk
        self.blocks = nn.ModuleList(GeneratorBlock(a, b, cond, "spectral") for a, b in zip(chans, chans[1:]))
        self.attention = nn.ModuleDict({str(i): SelfAttention(b) for i, b in enumerate(chans[1:])
                                        if 8 * 2 ** i == attention})
        self.out = nn.Sequential(nn.BatchNorm2d(chans[-1]), nn.ReLU(),
                                 spectral(nn.Conv2d(chans[-1], channels, 3, 1, 1), "spectral"), nn.Tanh())
        self.channels0 = chans[0]

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        first, *chunks = z.split([self.latent_dim - self.chunk * self.n_blocks] + [self.chunk] * self.n_blocks, 1)
        embedding = self.shared(labels)
        h = self.linear(first).view(z.shape[0], self.channels0, 4, 4)
        for i, (block, chunk) in enumerate(zip(self.blocks, chunks)):
            h = block(h, torch.cat([embedding, chunk], 1))
            if str(i) in self.attention:
                h = self.attention[str(i)](h)
        return self.out(h)


class BigDiscriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, width: int, n_classes: int, attention: int,
                 twice_differentiable: bool = False):
        super().__init__()
        chans = block_widths(resolution, width)[::-1]  # at resolution, ..., 4
        layers = []
        cin = channels
        for i, cout in enumerate(chans[1:]):
            layers.append(DiscriminatorBlock(cin, cout, first=i == 0))
            if resolution // 2 ** (i + 1) == min(attention, resolution // 2):  # after the block reaching it
                layers.append(SelfAttention(cout, twice_differentiable=twice_differentiable))
            cin = cout
        layers.append(DiscriminatorBlock(cin, cin, downsample=False))
        self.blocks = nn.Sequential(*layers)
        self.head = ProjectionHead(cin, n_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.blocks(x)).sum(dim=(2, 3)), labels)


@dataclass
class BigGANOptions(NoiseOptions):
    shared_dim: int = 128  # shared class embedding fed with each latent chunk to every conditional BN
    attention: int = 0  # resolution of the self-attention block; 0: half the image size, at least 8 (64 at 128 px)
    orthogonal: float = 1e-4  # beta of the orthogonal regularisation added to the G loss
    truncation: float = option(1.0, interval="[0, 1]")  # psi used by sample_inputs (1: off); per call: inputs["truncation"]
    joint_critic: str = option("on", choices=tuple(JOINT_CRITIC))  # D on real and fake in one pass (torch.cat),
    # as BigGAN-PyTorch does: one spectral-norm power iteration per D update instead of two, half the kernel
    # launches; off: two passes (before issue 19, --preset paper); auto: on off the CPU. On a CPU it costs the same
    # as two passes; at 211 steps on digits it scored FD 7.43 vs 8.59 (one seed each, issue 20)


# Brock et al. 2019 sec. 4 / app. B: hinge, G lr 1e-4, D lr 4e-4, Adam(0, 0.999), 2 D steps per G step, 120-d z,
# ortho reg 1e-4, G EMA 0.9999 starting after 20k iterations (the default until issue 20, with the joint D pass)
PAPER = {"model": {"loss": "hinge", "penalty": "none", "latent_dim": 120, "width": 64},
         "train": {"lr_g": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.999, "n_critic": 2, "ema": 0.9999,
                   "ema_start": 20000}}


@register
class BigGAN(Conditional, NoiseGAN):
    """Class-conditional BigGAN; `truncation` in the inputs (psi per sample, 1: off) truncates z."""

    name = "biggan"
    Options = BigGANOptions
    capabilities = Capabilities(conditional=True, truncation=Truncation("mass"))
    # the default (issue 20): the paper's recipe tuned for small CPU budgets by `ganforge tune --trial-cpu-seconds
    # 100` on digits (docs/tuning.md): one D step per G step (~1.7x the steps for the CPU), Adam 6.6e-4 / 2.1e-4;
    # at 120 CPU-s it scored FD 8.19 / 7.91 vs 22.21 / 20.36 for the paper's recipe (docs/results.md)
    preset = {"model": PAPER["model"], "train": PAPER["train"] | {"lr_g": 6.6e-4, "lr_d": 2.1e-4, "n_critic": 1}}
    # the paper's recipe with D run twice per update (real, then fake), as ganforge did before issue 19
    presets = {"paper": {"model": PAPER["model"] | {"options": {"joint_critic": "off"}}, "train": PAPER["train"]}}

    def __init__(self, config, info):
        super().__init__(config, info)
        self.check_classes()
        o, model = self.options, config.model
        self.joint_critic = JOINT_CRITIC[o.joint_critic]
        attention = o.attention or max(8, info.resolution // 2)
        if attention & (attention - 1) or not 8 <= attention <= info.resolution:
            raise GanforgeError(f"model.options.attention must be a power of two from 8 to {info.resolution}, "
                                f"got {attention}")
        self.generator = BigGenerator(model.latent_dim, info.n_classes, o.shared_dim, info.channels, info.resolution,
                                      model.width, attention)
        self.discriminator = BigDiscriminator(info.channels, info.resolution, model.width, info.n_classes, attention,
                                              twice_differentiable=model.penalty != "none")  # GP / R1
        for m in self.modules():  # BigGAN initialises with orthogonal weights
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
                weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
                nn.init.orthogonal_(weight)

    def sample_inputs(self, n: int, rng: torch.Generator, labels: torch.Tensor | None = None, data=None) -> Batch:
        inputs = super().sample_inputs(n, rng, labels, data)
        if self.options.truncation < 1:
            inputs["truncation"] = torch.full((n,), float(self.options.truncation))
        return inputs

    def generate(self, generator: nn.Module, inputs: Batch) -> torch.Tensor:
        z = inputs["noise"]
        if "truncation" in inputs:
            z = truncated(z, inputs["truncation"])
        return generator(z, inputs["label"])

    def loss(self, phase: str, batch: Batch):
        loss, logs = super().loss(phase, batch)
        if phase == "G" and self.options.orthogonal > 0:
            ortho = orthogonal_regularization(self.generator)
            loss = loss + self.options.orthogonal * ortho
            logs["ortho"] = ortho.detach()
        return loss, logs


