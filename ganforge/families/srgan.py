"""SRResNet and SRGAN (Ledig et al. 2017).

SRResNet: residual blocks and PixelShuffle upsampling trained with a pixel loss (the PSNR-oriented model).
SRGAN: the same generator with a VGG-style discriminator, a perceptual (VGG feature) loss and an adversarial loss.
"""

from __future__ import annotations

from ganforge.families import register
from ganforge.families.kinds.super_resolution import SuperResolution


@register
class SRResNetFamily(SuperResolution):
    """SRResNet: the SRGAN generator trained with MSE alone (the PSNR-oriented model)."""

    name = "srresnet"
    preset = {
        "data": {"resolution": 128},
        "model": {"width": 64, "g_norm": "batch", "options": {"blocks": 16, "pixel_loss": "mse"}},
        "train": {"batch_size": 16, "lr_g": 1e-4, "beta1": 0.9, "beta2": 0.999, "ema": 0.0, "ema_start": 1},
    }


@register
class SRGAN(SuperResolution):
    """SRGAN: SRResNet plus VGG54 perceptual loss (features scaled by 1/12.75) and 1e-3 adversarial loss."""

    name = "srgan"
    preset = {
        "data": {"resolution": 128},
        "model": {"width": 64, "g_norm": "batch", "d_norm": "batch", "loss": "nonsaturating",
                  "options": {"blocks": 16, "pixel_weight": 0.0, "perceptual": "vgg", "perceptual_layer": "relu5_4",
                              "perceptual_weight": 1 / 12.75**2, "perceptual_criterion": "mse",
                              "adversarial_weight": 1e-3}},
        "train": {"batch_size": 16, "lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.9, "beta2": 0.999, "ema": 0.0,
                  "ema_start": 1},
    }
