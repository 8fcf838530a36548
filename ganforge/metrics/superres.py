"""Super-resolution fidelity: PSNR and SSIM on the Y channel with a `scale`-pixel border crop, next to bicubic.

The protocol of the SR literature (SRCNN onwards, BasicSR): outputs are 8-bit images, converted to Y of ITU-R
BT.601 YCbCr (studio range 16..235), `scale` pixels are cropped from every border, PSNR uses data range 255 (1 on
[0, 1] floats), SSIM a gaussian 11x11 window with sigma 1.5 averaged over the region the window fits in.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from ganforge.data.degrade import bicubic_downscale, bicubic_upscale, quantize
from ganforge.errors import GanforgeError

SSIM_BORDER = 5  # (11 - 1) // 2: where the gaussian window overhangs the image


def protocol(scale: int) -> str:
    return (f"Y channel (ITU-R BT.601, 16-235), 8-bit, {scale}-px border crop, PSNR data range 255; SSIM gaussian "
            f"11x11 sigma 1.5 over the valid window region; LR = bicubic (antialiased) x1/{scale} of the HR image")


def rgb_to_y(images: Tensor) -> Tensor:
    """Y of BT.601 YCbCr in [0, 1] units (16/255..235/255) from RGB in [0, 1]; grey images are returned as they are."""
    if images.shape[1] == 1:
        return images
    weights = images.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
    return (16.0 + (images * weights).sum(1, keepdim=True)) / 255.0


def _prepare(output: Tensor, target: Tensor, border: int) -> tuple[Tensor, Tensor]:
    if output.shape != target.shape:
        raise GanforgeError(f"SR metrics compare image pairs: shapes differ ({tuple(output.shape)} vs {tuple(target.shape)})")
    h, w = output.shape[-2:]
    if min(h, w) <= 2 * border:
        raise GanforgeError(f"image of {h}x{w} px is too small for a {border}-px border crop")
    crop = (slice(None), slice(None), slice(border, h - border or None), slice(border, w - border or None))
    return rgb_to_y(quantize(output.float()))[crop], rgb_to_y(quantize(target.float()))[crop]


def psnr_y(output: Tensor, target: Tensor, border: int) -> Tensor:
    """Per-image PSNR (dB) on Y of [0, 1] images (N, C, H, W), `border` pixels cropped."""
    y_out, y_ref = _prepare(output, target, border)
    return peak_signal_noise_ratio(y_out, y_ref, data_range=1.0, reduction="none", dim=(1, 2, 3))


def ssim_y(output: Tensor, target: Tensor, border: int) -> Tensor:
    """Per-image SSIM on Y of [0, 1] images (N, C, H, W), `border` pixels cropped."""
    y_out, y_ref = _prepare(output, target, border)
    if min(y_out.shape[-2:]) <= 2 * SSIM_BORDER:
        raise GanforgeError(f"images of {tuple(y_out.shape[-2:])} px after the border crop are too small for SSIM")
    _, full = structural_similarity_index_measure(y_out.double(), y_ref.double(), data_range=1.0,
                                                  return_full_image=True, reduction="none")
    return full[..., SSIM_BORDER:-SSIM_BORDER, SSIM_BORDER:-SSIM_BORDER].mean(dim=(1, 2, 3)).float()


def mod_crop(image: Tensor, scale: int) -> Tensor:
    """Crop an image (…, H, W) so both sides are multiples of `scale` (the usual SR test-set preparation)."""
    h, w = image.shape[-2:]
    return image[..., : h - h % scale, : w - w % scale]


@torch.no_grad()
def evaluate_sr(upscale: Callable[[Tensor], Tensor], images: list[Tensor], scale: int) -> dict:
    """Mean Y-PSNR / Y-SSIM of `upscale` ([-1, 1] (1, C, h, w) -> (1, C, h*s, w*s)) and of bicubic on HR images.

    `images` are uint8 (C, H, W) high-resolution images of any size; each is mod-cropped, shrunk by bicubic and
    8-bit quantised to make its input. Returns means, per-image values and the protocol string.
    """
    rows = []
    for image in images:
        hr = mod_crop(image, scale).float().div(255)[None]
        lr = quantize(bicubic_downscale(hr, scale))
        sr = upscale(lr * 2 - 1).float().add(1).div(2).clamp(0, 1).cpu()
        bicubic = bicubic_upscale(lr, scale).clamp(0, 1)
        rows.append({"psnr": psnr_y(sr, hr, scale).item(), "ssim": ssim_y(sr, hr, scale).item(),
                     "bicubic_psnr": psnr_y(bicubic, hr, scale).item(),
                     "bicubic_ssim": ssim_y(bicubic, hr, scale).item()})
    if not rows:
        raise GanforgeError("no images to evaluate")
    means = {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]}
    return {**means, "n": len(rows), "scale": scale, "protocol": protocol(scale), "images": rows}
