"""WaveGAN's networks (Donahue et al. 2019, "Adversarial Audio Synthesis", tables 3 and 4): a 1-D transposed-
convolution generator (kernel 25, stride 4) and a 1-D strided-convolution discriminator with phase shuffle."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.errors import GanforgeError
from ganforge.nn.resblocks import ProjectionHead

KERNEL = 25
# clip length -> (length after the dense layer, upsampling strides); 16384 is the paper's, 32768/65536 its
# released code's (an extra stride-2 or stride-4 layer), 8192 starts from 8 instead of 16 samples
LAYOUTS = {8192: (8, (4, 4, 4, 4, 4)), 16384: (16, (4, 4, 4, 4, 4)), 32768: (16, (4, 4, 4, 4, 4, 2)),
           65536: (16, (4, 4, 4, 4, 4, 4))}


def layout(length: int) -> tuple[int, tuple[int, ...]]:
    """The dense layer's output length and the strides that make `length` samples; one line for unknown lengths."""
    if length not in LAYOUTS:
        raise GanforgeError(f"model.options.length: WaveGAN makes clips of {', '.join(map(str, LAYOUTS))} samples, "
                            f"got {length}")
    return LAYOUTS[length]


def channel_widths(width: int, layers: int) -> list[int]:
    """Channels from the dense layer down to the last hidden layer: width * 2^(layers-1), ..., width."""
    return [width * 2 ** (layers - 1 - i) for i in range(layers)]


def same_padding(stride: int) -> tuple[int, int]:
    """(padding, output_padding) making a kernel-25 convolution scale the length by exactly `stride`."""
    padding = (KERNEL - stride + 1) // 2
    return padding, 2 * padding - (KERNEL - stride)


def upsampling(cin: int, cout: int, stride: int, kind: str) -> nn.Module:
    """Transposed convolution ("transpose", the paper's) or nearest-neighbour upsampling then a convolution
    ("nearest", the paper's remedy for checkerboard artefacts)."""
    if kind == "nearest":
        return nn.Sequential(nn.Upsample(scale_factor=stride, mode="nearest"), nn.Conv1d(cin, cout, KERNEL, 1, 12))
    padding, extra = same_padding(stride)
    return nn.ConvTranspose1d(cin, cout, KERNEL, stride, padding, output_padding=extra)


class PhaseShuffle(nn.Module):
    """Shift each example's activations in time by a random whole number of samples in [-radius, radius], the
    vacated edge filled by reflection (section 3.3 of the paper); the length is kept, radius 0 is the identity."""

    def __init__(self, radius: int):
        super().__init__()
        self.radius = radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.radius == 0:
            return x
        n, _, length = x.shape
        if length <= self.radius:
            raise ValueError(f"phase shuffle of radius {self.radius} needs more than {self.radius} samples")
        shift = torch.randint(-self.radius, self.radius + 1, (n, 1, 1), device=x.device)
        index = torch.arange(length, device=x.device).view(1, 1, -1) - shift
        index = index.abs()  # reflect at the start ...
        index = torch.where(index > length - 1, 2 * (length - 1) - index, index)  # ... and at the end
        return x.gather(2, index.expand_as(x))


class WaveGenerator(nn.Module):
    """z (and a class embedding) -> dense -> (ReLU, upsample) x layers -> tanh, optionally a learned post-filter."""

    def __init__(self, latent_dim: int, length: int, width: int, n_classes: int = 0, embed_dim: int = 0,
                 upsample: str = "transpose", batch_norm: bool = False, post_filter: int = 0):
        super().__init__()
        start, strides = layout(length)
        chans = channel_widths(width, len(strides))
        self.start = start
        self.embed = nn.Embedding(n_classes, embed_dim) if n_classes else None
        self.dense = nn.Linear(latent_dim + (embed_dim if n_classes else 0), start * chans[0])
        self.first_norm = nn.BatchNorm1d(chans[0]) if batch_norm else nn.Identity()
        layers = []
        for i, stride in enumerate(strides):
            last = i == len(strides) - 1
            cout = 1 if last else chans[i + 1]
            layers.append(upsampling(chans[i], cout, stride, upsample))
            if not last:
                layers += [nn.BatchNorm1d(cout) if batch_norm else nn.Identity(), nn.ReLU(True)]
        self.body = nn.Sequential(*layers, nn.Tanh())
        # the paper's post-processing filter: one learned FIR filter over the output (512 taps in the paper)
        self.post_filter = nn.Conv1d(1, 1, post_filter, padding="same", bias=False) if post_filter else None

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], 1)
        h = self.dense(z).view(z.shape[0], -1, self.start)
        wave = self.body(F.relu(self.first_norm(h)))
        return wave if self.post_filter is None else self.post_filter(wave).clamp(-1, 1)


class WaveDiscriminator(nn.Module):
    """(conv stride 4, LeakyReLU 0.2, phase shuffle) x layers -> dense logit; with classes, a projection head."""

    def __init__(self, length: int, width: int, n_classes: int = 0, shuffle: int = 2, spectral: bool = False):
        super().__init__()
        _, strides = layout(length)
        chans = channel_widths(width, len(strides))[::-1]
        wrap = nn.utils.parametrizations.spectral_norm if spectral else (lambda m: m)
        layers, cin = [], 1
        for i, (stride, cout) in enumerate(zip(strides[::-1], chans)):
            layers += [wrap(nn.Conv1d(cin, cout, KERNEL, stride, same_padding(stride)[0])), nn.LeakyReLU(0.2, True)]
            if i < len(strides) - 1:
                layers.append(PhaseShuffle(shuffle))
            cin = cout
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = ProjectionHead(chans[-1] * layout(length)[0], n_classes, "spectral" if spectral else "none")

    def forward(self, wave: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(wave), labels)
