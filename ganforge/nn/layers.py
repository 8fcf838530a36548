"""Normalisation choice, spectral norm and DCGAN initialisation, shared by every family."""

from __future__ import annotations

import torch.nn as nn

from ganforge.config import NORMS
from ganforge.errors import GanforgeError


def check_norm(kind: str, field: str) -> None:
    if kind not in NORMS:
        raise GanforgeError(f"{field} must be one of {', '.join(NORMS)}; got '{kind}'")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The feature normalisation after a convolution ('spectral' and 'none' add none)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def spectral(layer: nn.Module, kind: str) -> nn.Module:
    """Spectrally normalise (Miyato et al. 2018) `layer`, or each conv/linear inside it, when `kind` is 'spectral'."""
    if kind != "spectral":
        return layer
    weighted = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    for module in [layer] if isinstance(layer, weighted) else [m for m in layer.modules() if isinstance(m, weighted)]:
        nn.utils.parametrizations.spectral_norm(module)
    return layer


def conv_block(conv: nn.Module, norm: str, channels: int, activation: nn.Module) -> nn.Sequential:
    """conv -> norm -> activation, with the conv spectrally normalised when norm is 'spectral'."""
    return nn.Sequential(spectral(conv, norm), norm_layer(norm, channels), activation)


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al. 2016): conv weights N(0, 0.02), norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
