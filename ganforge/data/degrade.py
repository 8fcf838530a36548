"""Degradations that turn high-resolution images into low-resolution training inputs.

First order (SRGAN / ESRGAN): blur -> bicubic downscale -> noise -> JPEG. The optional second-order chain repeats it
once more through an intermediate size, as Real-ESRGAN does (Wang et al. 2021, sec. 3.1), to imitate images that
were resized and re-compressed several times. Every random choice comes from the `rng` passed in, so a pipeline is
deterministic under a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError


@dataclass
class Degradation:
    """Settings of the degradation pipeline; all off gives the classic bicubic downscale."""

    scale: int = 4
    blur: float = 0.0  # largest gaussian blur sigma in HR pixels (sigma ~ U(0.2, blur)); 0: no blur
    noise: float = 0.0  # largest gaussian noise std in 8-bit levels (std ~ U(0, noise)); 0: no noise
    jpeg: int = 0  # lowest JPEG quality (quality ~ U(jpeg, 95)); 0: no JPEG
    second_order: bool = False  # run the chain twice, through a random intermediate size

    def check(self) -> None:
        if self.scale not in (2, 3, 4, 8):
            raise GanforgeError(f"model.options.scale must be 2, 3, 4 or 8, got {self.scale}")
        if self.blur < 0 or self.noise < 0:
            raise GanforgeError(f"model.options.blur and noise must be >= 0, got {self.blur} and {self.noise}")
        if not (self.jpeg == 0 or 1 <= self.jpeg <= 95):
            raise GanforgeError(f"model.options.jpeg must be 0 (off) or a quality in 1..95, got {self.jpeg}")

    @property
    def is_bicubic(self) -> bool:
        return self.blur == 0 and self.noise == 0 and self.jpeg == 0 and not self.second_order


def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of float images with antialiasing when shrinking (like MATLAB imresize and PIL)."""
    return F.interpolate(images, size=size, mode="bicubic", align_corners=False, antialias=True)


def bicubic_downscale(images: torch.Tensor, scale: int) -> torch.Tensor:
    """Float images (N, C, H, W) shrunk by `scale`; H and W must be multiples of it."""
    h, w = images.shape[-2:]
    if h % scale or w % scale:
        raise GanforgeError(f"image size {h}x{w} is not a multiple of the scale {scale}")
    return resize(images, (h // scale, w // scale))


def bicubic_upscale(images: torch.Tensor, scale: int) -> torch.Tensor:
    """The bicubic baseline: float images enlarged exactly `scale` times."""
    h, w = images.shape[-2:]
    return resize(images, (h * scale, w * scale))


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Round [0, 1] floats to 8-bit levels, as a saved image would be."""
    return images.clamp(0, 1).mul(255).round().div(255)


def _uniform(rng: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=rng))


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """One float image (C, H, W) blurred with an isotropic gaussian (reflect padding)."""
    from torchvision.transforms.functional import gaussian_blur as tv_blur

    radius = min(10, max(1, math.ceil(3 * sigma)))
    radius = min(radius, (min(image.shape[-2:]) - 1) // 2) or 1
    return tv_blur(image, [2 * radius + 1] * 2, [sigma, sigma])


def jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """One [0, 1] float image (C, H, W) through JPEG encoding at `quality` (PIL/libjpeg) and back."""
    import io

    import numpy as np
    from PIL import Image

    array = image.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buffer, format="JPEG", quality=quality)
    decoded = np.array(Image.open(buffer))
    out = torch.from_numpy(decoded).float().div(255)
    return out[None] if out.ndim == 2 else out.permute(2, 0, 1)


def _one_pass(image: torch.Tensor, size: tuple[int, int], settings: Degradation, rng: torch.Generator) -> torch.Tensor:
    if settings.blur > 0:
        image = gaussian_blur(image, _uniform(rng, 0.2, max(0.2, settings.blur)))
    image = resize(image[None], size)[0]
    if settings.noise > 0:
        std = _uniform(rng, 0.0, settings.noise) / 255.0
        image = image + std * torch.randn(image.shape, generator=rng)
    image = image.clamp(0, 1)
    if settings.jpeg > 0:
        image = jpeg(image, int(round(_uniform(rng, settings.jpeg, 95))))
    return image


def degrade(hr: torch.Tensor, settings: Degradation, rng: torch.Generator) -> torch.Tensor:
    """Low-resolution [0, 1] images (N, C, H/scale, W/scale), 8-bit quantised, from [0, 1] CPU images `hr`."""
    h, w = hr.shape[-2:]
    scale = settings.scale
    if h % scale or w % scale:
        raise GanforgeError(f"image size {h}x{w} is not a multiple of the scale {scale}")
    final = (h // scale, w // scale)
    if settings.is_bicubic:
        return quantize(resize(hr.float(), final))
    out = []
    for image in hr.float():
        if settings.second_order:
            middle = _uniform(rng, 1.0, float(scale))
            image = _one_pass(image, (max(final[0], round(h / middle)), max(final[1], round(w / middle))), settings, rng)
        out.append(_one_pass(image, final, settings, rng))
    return quantize(torch.stack(out))
