"""StyleGAN / ProGAN layers: equalised learning rate, pixel norm, minibatch stddev, mapping network, modulated
convolution and noise inputs (Karras et al. 2018, 2019, 2020)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (ProGAN sec. 4.1): weights ~ N(0, 1/lr_mul), scaled at run time."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        out = F.linear(x, self.weight * self.scale, bias)
        return F.leaky_relu(out, 0.2) * math.sqrt(2) if self.activation else out


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate: He-constant scaling applied at run time, not at init."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int | None = None,
                 bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.padding = kernel_size // 2 if padding is None else padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class PixelNorm(nn.Module):
    """Normalise each pixel's feature vector to unit average square (ProGAN sec. 4.2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)


class MinibatchStd(nn.Module):
    """Append the mean over features of the per-group standard deviation as extra channels (ProGAN sec. 3), for
    (N, C, *positions): images (N, C, H, W) or clips (N, C, L); sample i is in group i % (N / group)."""

    def __init__(self, group_size: int = 4, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, *positions = x.shape
        group = min(self.group_size, n)
        while n % group:
            group -= 1
        f = self.num_channels
        y = x.reshape(group, -1, f, c // f, *positions)
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt()  # std over the group
        y = y.mean(dim=tuple(range(2, y.dim()))).reshape(-1, f, *[1] * len(positions))
        return torch.cat([x, y.repeat(group, 1, *positions)], 1)


class MappingNetwork(nn.Module):
    """z -> w: pixel-normalised z through an MLP with a 0.01 learning-rate multiplier (StyleGAN sec. 2)."""

    def __init__(self, z_dim: int, w_dim: int, n_layers: int = 8, lr_mul: float = 0.01):
        super().__init__()
        dims = [z_dim] + [w_dim] * n_layers
        self.net = nn.Sequential(PixelNorm(), *[EqualLinear(a, b, lr_mul=lr_mul, activation=True)
                                                for a, b in zip(dims, dims[1:])])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


MODCONV = ("auto", "grouped", "activations")


class ModulatedConv2d(nn.Module):
    """Weight (de)modulation by a style vector (StyleGAN2 eq. 1-3).

    Two computations of the same maths (`mode`): "grouped" modulates the weight per sample and runs one grouped
    convolution (groups = batch; StyleGAN2's fused_modconv=True), "activations" scales the input channels by the
    style, convolves with the one shared weight and scales the outputs by the demodulation coefficients
    (fused_modconv=False; cheaper to back-propagate, and what ONNX export writes). "auto" does as StyleGAN2-ADA:
    activations while training, grouped in eval mode (sampling). `upsample` doubles the resolution first (bilinear),
    the resize-then-convolve form free of checkerboards.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.affine = EqualLinear(style_dim, in_channels, bias_init=1.0)  # styles start at 1: plain convolution
        self.scale = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.demodulate, self.upsample = demodulate, upsample
        self.padding = kernel_size // 2
        self.out_channels = out_channels
        self.mode = "auto"

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, c, h, width = x.shape
        activations = self.mode == "activations" or (self.mode == "auto" and self.training)
        if activations or torch.onnx.is_in_onnx_export():  # (ONNX has no batch-sized group count)
            return self._activations_modulated(x, self.affine(w))
        style = self.affine(w).view(n, 1, c, 1, 1)
        weight = self.scale * self.weight * style
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum((2, 3, 4), keepdim=True) + 1e-8)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            h, width = h * 2, width * 2
        weight = weight.view(n * self.out_channels, c, *weight.shape[-2:])
        out = F.conv2d(x.reshape(1, n * c, h, width), weight, padding=self.padding, groups=n)
        return out.view(n, self.out_channels, h, width)

    def _activations_modulated(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """The same maths with one shared weight (StyleGAN2's non-fused path): scale the input channels by the
        style, convolve, then scale each output channel by its demodulation coefficient."""
        weight = self.scale * self.weight[0]
        x = x * style.view(*style.shape, 1, 1)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            coefficients = torch.rsqrt(style.square() @ weight.square().sum((2, 3)).t() + 1e-8)
            out = out * coefficients.view(*coefficients.shape, 1, 1)
        return out


class NoiseInjection(nn.Module):
    """Per-pixel Gaussian noise scaled by a learned per-channel strength (StyleGAN sec. 2).

    Training draws fresh noise; in eval mode a fixed noise map (a buffer) is used so that sampling is
    reproducible and a saved model gives the same images after loading (NVlabs' noise_mode='const').
    """

    def __init__(self, channels: int, resolution: int, seed: int):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(1, channels, 1, 1))
        const = torch.randn(1, 1, resolution, resolution, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("const", const)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            noise = torch.randn(x.shape[0], 1, *x.shape[-2:], device=x.device, dtype=x.dtype)
        else:
            noise = self.const.to(x.dtype)
        return x + self.strength * noise
