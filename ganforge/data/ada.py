"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data"): every image the discriminator sees, real or generated, is augmented with probability p, and p
follows the discriminator's overfitting heuristic r_t = E[sign(D(real))] (their eq. 1) toward a target (0.6).

The pipeline is the paper's differentiable subset, each transform applied per image with probability p: x-flip,
90-degree rotations and integer translation (pixel blitting; "bgc" without the geometric warps), then brightness,
contrast and saturation (colour). Every transform is a gather or an affine map of the pixels, so gradients reach
the generator. p and the running sums of r_t are buffers, so they travel in checkpoints and come back on resume.
Every noise-to-image family has it as the model option `ada` (ganforge.families.kinds.noise).
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

INTERVAL = 4  # discriminator steps between adjustments of p (the paper's N = 4 minibatches)
TRANSLATE = 0.125  # the largest integer shift, as a fraction of the image size (the paper's 0.125)
BRIGHTNESS_STD, CONTRAST_STD, SATURATION_STD = 0.2, 0.5, 1.0  # the paper's defaults (contrast, saturation: log2)


class AdaptiveAugment(nn.Module):
    """Augments discriminator inputs with probability `p` and adjusts p from the signs of D's real logits."""

    def __init__(self, target: float = 0.6, kimg: float = 500.0):
        super().__init__()
        self.target = target
        self.speed = kimg * 1000  # images over which p can move by 1 (the paper's 500k)
        self.register_buffer("p", torch.zeros(()))
        self.register_buffer("signs", torch.zeros((), dtype=torch.float64))  # sum of sign(D(real)) this interval
        self.register_buffer("seen", torch.zeros((), dtype=torch.float64))  # real images this interval
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def observe(self, real_logits: torch.Tensor) -> torch.Tensor:
        """Record the signs of D's logits on real images; every INTERVAL calls move p by
        sign(r_t - target) * images / speed (summed over all processes under torchrun). Returns this batch's r_t."""
        signs = torch.sign(real_logits.detach().float()).reshape(-1)
        self.signs += signs.sum().double()
        self.seen += signs.numel()
        self.calls += 1
        if int(self.calls) % INTERVAL == 0:
            totals = torch.stack([self.signs, self.seen])
            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                dist.all_reduce(totals)
            r_t = totals[0] / totals[1]
            step = torch.sign(r_t - self.target) * totals[1] / self.speed
            self.p.copy_((self.p.double() + step).clamp(0, 1))
            self.signs.zero_()
            self.seen.zero_()
        return signs.mean()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """`images` (N, C, H, W) augmented: each transform applied to each image with probability p."""
        n, channels, height, width = images.shape
        x = self._maybe(images, images.flip(-1))
        turns = (1, 2, 3) if height == width else (2,)  # non-square images only turn by 180 degrees
        chosen, quarter = self._chosen(x), torch.randint(0, len(turns), (n, 1, 1, 1), device=x.device)
        for which, turn in enumerate(turns):
            x = torch.where(chosen & (quarter == which), torch.rot90(x, turn, (2, 3)), x)
        x = self._maybe(x, translate(x, TRANSLATE))
        colour, rest = x[:, :3], x[:, 3:]  # an alpha channel is not a colour
        shape = (n, 1, 1, 1)
        colour = self._maybe(colour, colour + torch.randn(shape, device=x.device, dtype=x.dtype) * BRIGHTNESS_STD)
        scale = torch.exp2(torch.randn(shape, device=x.device, dtype=x.dtype) * CONTRAST_STD)
        colour = self._maybe(colour, colour * scale)  # about mid-grey (0 in [-1, 1]), as the paper's pipeline
        if colour.shape[1] == 3:
            grey = colour.mean(1, keepdim=True)
            scale = torch.exp2(torch.randn(shape, device=x.device, dtype=x.dtype) * SATURATION_STD)
            colour = self._maybe(colour, grey + (colour - grey) * scale)
        return torch.cat([colour, rest], 1) if rest.shape[1] else colour

    def _chosen(self, x: torch.Tensor) -> torch.Tensor:
        """Which images a transform applies to: each with probability p."""
        return torch.rand(x.shape[0], 1, 1, 1, device=x.device) < self.p

    def _maybe(self, x: torch.Tensor, transformed: torch.Tensor) -> torch.Tensor:
        """`transformed` for each chosen image, else `x` unchanged (exactly: p = 0 is no augmentation)."""
        return torch.where(self._chosen(x), transformed, x)


def translate(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """Shift each image by a random whole number of pixels, up to `ratio` of its size, reflecting at the edges."""
    n, channels, height, width = x.shape
    pad = min(max(1, math.ceil(max(height, width) * ratio)), height - 1, width - 1)
    if pad < 1:
        return x
    dy = torch.randint(-pad, pad + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-pad, pad + 1, (n, 1, 1), device=x.device)
    padded = F.pad(x, [pad] * 4, mode="reflect")
    rows = (torch.arange(height, device=x.device).view(1, height, 1) + pad - dy).expand(n, height, width)
    cols = (torch.arange(width, device=x.device).view(1, 1, width) + pad - dx).expand(n, height, width)
    index = (rows * (width + 2 * pad) + cols).reshape(n, 1, height * width).expand(-1, channels, -1)
    return padded.flatten(2).gather(2, index).view_as(x)
