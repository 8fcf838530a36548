"""Paired pixel metrics via torchmetrics: SSIM, MS-SSIM, PSNR on RGB (or grey) in [0, 1], no border crop."""
from __future__ import annotations

from torch import Tensor

from ganforge.errors import GanforgeError

# torchmetrics is imported inside the functions: importing it costs seconds at every CLI start

PROTOCOL = ("channels as given (RGB or grey), [0,1], data_range=1, no image border crop; SSIM gaussian 11x11 "
            "sigma 1.5 averaged over the valid window region")
SSIM_BORDER = 5  # (11 - 1) // 2: where the gaussian window overhangs the image
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _unit(fake: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
    """Check pairing and map [-1, 1] to [0, 1]."""
    if fake.shape != real.shape:
        raise GanforgeError(f"SSIM/PSNR compare image pairs: shapes differ "
                            f"({tuple(fake.shape)} vs {tuple(real.shape)})")
    return ((fake.float() + 1) / 2).clamp(0, 1), ((real.float() + 1) / 2).clamp(0, 1)


def ssim(fake: Tensor, real: Tensor) -> float:
    """Mean SSIM (Wang et al. 2004) over image pairs, averaged over the valid region like scikit-image and MATLAB.

    torchmetrics averages the reflect-padded full map; we take its map and drop the 5-px border the window overhangs.
    """
    fake, real = _unit(fake, real)
    from torchmetrics.functional.image import structural_similarity_index_measure

    _, full = structural_similarity_index_measure(fake, real, data_range=1.0, return_full_image=True,
                                                  reduction="none")
    return full[..., SSIM_BORDER:-SSIM_BORDER, SSIM_BORDER:-SSIM_BORDER].mean().item()


def ms_ssim_scales(size: int, kernel_size: int = 11) -> int:
    """How many of the 5 MS-SSIM scales fit an image side (each halves it; the kernel must fit the last)."""
    scales = 5
    while scales > 1 and size <= (kernel_size - 1) * 2 ** (scales - 1):
        scales -= 1
    return scales


def ms_ssim(fake: Tensor, real: Tensor) -> tuple[float, int]:
    """Mean MS-SSIM (Wang et al. 2003) and the number of scales used (fewer than 5 for small images)."""
    fake, real = _unit(fake, real)
    scales = ms_ssim_scales(min(fake.shape[-2:]))
    betas = MS_SSIM_BETAS[:scales]
    betas = tuple(b / sum(betas) for b in betas)
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    value = multiscale_structural_similarity_index_measure(fake, real, data_range=1.0, betas=betas)
    return value.item(), scales


def psnr(fake: Tensor, real: Tensor) -> float:
    """PSNR in dB, averaged over image pairs."""
    fake, real = _unit(fake, real)
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return peak_signal_noise_ratio(fake, real, data_range=1.0, reduction="elementwise_mean", dim=(1, 2, 3)).item()
