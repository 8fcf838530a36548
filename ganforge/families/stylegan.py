"""StyleGAN-style generator (Karras et al. 2019, 2020): mapping network, learned constant input, modulated
convolutions with demodulation, per-layer noise, style mixing regularisation, truncation with the tracked mean w,
skip-connected RGB outputs; a residual discriminator with minibatch stddev; non-saturating loss with R1."""

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
from ganforge.families.kinds.noise import NoiseGAN, NoiseOptions
from ganforge.nn.dcgan import widths
from ganforge.nn.style import (MODCONV, EqualConv2d, EqualLinear, MappingNetwork, MinibatchStd, ModulatedConv2d,
                              NoiseInjection)


class StyledConv(nn.Module):
    """Modulated conv -> noise -> bias -> leaky ReLU (gain sqrt 2)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, upsample: bool, seed: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, upsample=upsample)
        self.noise = NoiseInjection(out_channels, resolution, seed)
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.noise(self.conv(x, w)) + self.bias, 0.2) * math.sqrt(2)


class ToRGB(nn.Module):
    def __init__(self, in_channels: int, channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias


class StyleGenerator(nn.Module):
    """z -> w (mapping) -> one w per layer -> synthesis from a learned 4x4 constant."""

    def __init__(self, latent_dim: int, w_dim: int, channels: int, resolution: int, width: int, n_mapping: int,
                 mapping_lr_mul: float, mixing_prob: float, w_avg_beta: float):
        super().__init__()
        chans = widths(resolution * 2, width)  # channels at 4, 8, ..., resolution
        self.mapping = MappingNetwork(latent_dim, w_dim, n_mapping, mapping_lr_mul)
        self.const = nn.Parameter(torch.randn(1, chans[0], 4, 4))
        self.convs = nn.ModuleList([StyledConv(chans[0], chans[0], w_dim, 4, False, seed=0)])
        self.to_rgbs = nn.ModuleList([ToRGB(chans[0], channels, w_dim)])
        for i, (a, b) in enumerate(zip(chans, chans[1:])):
            res = 8 * 2 ** i
            self.convs.append(StyledConv(a, b, w_dim, res, True, seed=2 * i + 1))
            self.convs.append(StyledConv(b, b, w_dim, res, False, seed=2 * i + 2))
            self.to_rgbs.append(ToRGB(b, channels, w_dim))
        self.num_ws = len(self.convs) + 1  # each toRGB shares the w of the next conv; the last one has its own
        self.mixing_prob, self.w_avg_beta = mixing_prob, w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def ws(self, z: torch.Tensor, truncation: torch.Tensor | None = None) -> torch.Tensor:
        """Per-layer styles (n, num_ws, w_dim); while training, tracks mean w and applies style mixing."""
        w = self.mapping(z)
        if self.training:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if self.training and self.mixing_prob > 0 and torch.rand(()) < self.mixing_prob:
            # style mixing regularisation (StyleGAN sec. 3.1): a second latent's styles from a random layer on
            cutoff = int(torch.randint(1, self.num_ws, ()))
            ws[:, cutoff:] = self.mapping(torch.randn_like(z)).unsqueeze(1)
        if truncation is not None:
            ws = self.w_avg.lerp(ws, truncation.view(-1, 1, 1).to(ws.dtype))  # w_avg + psi (w - w_avg)
        return ws

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        x = self.convs[0](x, ws[:, 0])
        rgb = self.to_rgbs[0](x, ws[:, 1])
        for i, to_rgb in enumerate(self.to_rgbs[1:]):
            x = self.convs[2 * i + 1](x, ws[:, 2 * i + 1])
            x = self.convs[2 * i + 2](x, ws[:, 2 * i + 2])
            rgb = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False) + to_rgb(x, ws[:, 2 * i + 3])
        return rgb

    def forward(self, z: torch.Tensor, truncation: torch.Tensor | None = None) -> torch.Tensor:
        return self.synthesis(self.ws(z, truncation))


class ResidualBlock(nn.Module):
    """conv3x3 - lrelu - conv3x3 - lrelu - avgpool with a 1x1 shortcut, summed with 1/sqrt(2) (StyleGAN2 fig. 7)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = EqualConv2d(in_channels, in_channels, 3)
        self.conv2 = EqualConv2d(in_channels, out_channels, 3)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(x), 0.2) * math.sqrt(2)
        h = F.avg_pool2d(F.leaky_relu(self.conv2(h), 0.2) * math.sqrt(2), 2)
        return (h + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2)


class StyleDiscriminator(nn.Module):
    """fromRGB -> residual blocks down to 4x4 -> minibatch stddev -> conv -> linear -> linear."""

    def __init__(self, channels: int, resolution: int, width: int):
        super().__init__()
        chans = widths(resolution * 2, width)[::-1]  # channels at resolution, ..., 4
        self.from_rgb = EqualConv2d(channels, chans[0], 1)
        self.blocks = nn.Sequential(*[ResidualBlock(a, b) for a, b in zip(chans, chans[1:])])
        self.stddev = MinibatchStd(4, 1)
        self.conv = EqualConv2d(chans[-1] + 1, chans[-1], 3)
        self.fc = EqualLinear(chans[-1] * 16, chans[-1], activation=True)
        self.out = EqualLinear(chans[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(F.leaky_relu(self.from_rgb(x), 0.2) * math.sqrt(2))
        h = F.leaky_relu(self.conv(self.stddev(h)), 0.2) * math.sqrt(2)
        return self.out(self.fc(h.flatten(1))).flatten()


@dataclass
class StyleGANOptions(NoiseOptions):
    w_dim: int = 0  # 0: same as model.latent_dim
    n_mapping: int = 8
    mapping_lr_mul: float = 0.01
    style_mixing: float = option(0.9, interval="[0, 1]")  # probability of mixing two latents' styles in a training batch
    w_avg_beta: float = option(0.995, interval="[0, 1)")  # decay of the tracked mean w used by truncation
    truncation: float = option(1.0, interval="[0, 1]")  # psi used by sample_inputs (1: off); per call: inputs["truncation"]
    r1_every: int = option(16, interval="[1, inf)")  # lazy R1 (StyleGAN2 sec. 3.1): every N D steps with gamma
    # times N; 1: on every D step
    modconv: str = option("auto", choices=MODCONV)  # modulated convolution: grouped (one grouped conv, weights
    # per sample) | activations (scale inputs, shared weight; StyleGAN2's fused_modconv=False) | auto (activations
    # while training, grouped for sampling); the same maths, only the speed differs


def truncation_input(n: int, psi: float) -> dict[str, torch.Tensor]:
    """The `truncation` generator input for n samples, or nothing when psi is 1 (off)."""
    return {} if psi == 1.0 else {"truncation": torch.full((n,), float(psi))}


# StyleGAN2 config F: non-saturating loss, R1 gamma 10, Adam(0.002, 0, 0.99), 512-d z and w, 8 mapping layers,
# style mixing 0.9, EMA over 10k images (0.999 per step at batch 32 here); no path-length regulariser; R1 lazily
# every 16 D steps (options.r1_every), added to that step's D loss rather than run as a separate optimiser step.
# The default until issue 20, now `--preset stylegan2`
CONFIG_F = {"model": {"loss": "nonsaturating", "penalty": "r1", "penalty_weight": 10.0, "latent_dim": 512,
                      "width": 64},
            "train": {"lr_g": 0.002, "lr_d": 0.002, "beta1": 0.0, "beta2": 0.99, "n_critic": 1, "batch_size": 32,
                      "ema": 0.999}}

LAYER_GROUPS = ("coarse", "middle", "fine")


@register
class StyleGAN(NoiseGAN):
    """StyleGAN2-style generator and residual discriminator; truncation via the `truncation` input or option."""

    name = "stylegan"
    Options = StyleGANOptions
    capabilities = Capabilities(truncation=Truncation("psi"), style_mixing=True, latent="w")
    tiny = {"model": {"options": {"n_mapping": 2}}}
    # the default (issue 20): config F tuned for small CPU budgets by `ganforge tune --trial-cpu-seconds 60` on
    # digits (docs/tuning.md): batch 16 (twice the steps for the CPU), R1 gamma 3.5, Adam rates 3.5e-3 / 1.9e-3
    preset = {"model": CONFIG_F["model"] | {"penalty_weight": 3.5},
              "train": CONFIG_F["train"] | {"lr_g": 3.5e-3, "lr_d": 1.9e-3, "batch_size": 16}}
    # ganforge's recipe before issue 19: config F with R1 on every D step (options.r1_every 1, as the first
    # StyleGAN paper did); lazy R1 makes a CPU step ~30% cheaper (issue 20: docs/results.md)
    presets = {"paper": {"model": CONFIG_F["model"] | {"options": {"r1_every": 1}}, "train": CONFIG_F["train"]},
               "stylegan2": CONFIG_F}

    def __init__(self, config, info):
        super().__init__(config, info)
        o, model = self.options, config.model
        self.generator = StyleGenerator(model.latent_dim, o.w_dim or model.latent_dim, info.channels, info.resolution,
                                        model.width, o.n_mapping, o.mapping_lr_mul, o.style_mixing, o.w_avg_beta)
        self.discriminator = StyleDiscriminator(info.channels, info.resolution, model.width)
        for module in self.generator.modules():
            if isinstance(module, ModulatedConv2d):
                module.mode = o.modconv

    def r1_interval(self) -> int:
        return self.options.r1_every

    def sample_inputs(self, n: int, rng: torch.Generator, labels: torch.Tensor | None = None, data=None) -> Batch:
        return super().sample_inputs(n, rng, labels, data) | truncation_input(n, self.options.truncation)

    def generate(self, generator: nn.Module, inputs: Batch) -> torch.Tensor:
        """From `noise` (z), or from `w`: one style (n, w_dim) for every layer or one per layer (n, num_ws, w_dim)."""
        if "w" not in inputs:
            return generator(inputs["noise"], inputs.get("truncation"))
        ws = inputs["w"] if inputs["w"].ndim == 3 else inputs["w"].unsqueeze(1).repeat(1, generator.num_ws, 1)
        if "truncation" in inputs:
            ws = generator.w_avg.lerp(ws, inputs["truncation"].view(-1, 1, 1).to(ws.dtype))
        return generator.synthesis(ws)

    def latent_inputs(self, generator: nn.Module, inputs: Batch) -> Batch:
        """Projection works in W (Karras et al. 2020, sec. 5): the mapped noise, one w for every layer."""
        mapped = {k: v for k, v in inputs.items() if k != "noise"}
        return mapped | {"w": generator.mapping(inputs["noise"])}

    def layer_range(self, generator: StyleGenerator, layers: str) -> range:
        """'coarse' | 'middle' | 'fine' (thirds of the style layers, as in the paper's figure 3) or 'A-B'."""
        n = generator.num_ws
        if layers in LAYER_GROUPS:
            cuts = [0, max(1, round(n * 0.3)), max(2, round(n * 0.6)), n]
            i = LAYER_GROUPS.index(layers)
            return range(cuts[i], cuts[i + 1])
        first, sep, last = layers.partition("-")
        try:
            span = range(int(first), int(last if sep else first) + 1)
        except ValueError:
            span = range(0)
        if not span or span.start < 0 or span.stop > n:
            raise GanforgeError(f"--layers: expected coarse, middle, fine or A-B with 0 <= A <= B < {n}; "
                                f"got '{layers}'")
        return span

    @torch.no_grad()
    def style_mix(self, generator: StyleGenerator, destination: torch.Tensor, source: torch.Tensor, layers: range,
                  truncation: float = 1.0) -> torch.Tensor:
        """Images (len(destination), len(source), C, H, W): each destination latent with the styles of `layers`
        taken from each source latent (StyleGAN fig. 3)."""
        psi = truncation_input(len(destination), truncation).get("truncation")
        ws_dst = generator.ws(destination, psi)
        psi = truncation_input(len(source), truncation).get("truncation")
        ws_src = generator.ws(source, psi)
        rows = []
        for w in ws_dst:
            mixed = w.unsqueeze(0).repeat(len(source), 1, 1)
            mixed[:, layers.start:layers.stop] = ws_src[:, layers.start:layers.stop]
            rows.append(generator.synthesis(mixed))
        return torch.stack(rows)
