"""Super-resolution inference on images of any size: overlapping tiles keep memory bounded.

Each tile is processed with `overlap` pixels of real context on every side (clipped at the image border) and only
its centre is kept, so when the overlap covers the network's receptive field the result equals whole-image
inference exactly (up to float rounding).
"""

from __future__ import annotations

from typing import Callable

import torch

from ganforge.errors import GanforgeError


@torch.no_grad()
def upscale_tiled(upscale: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, scale: int,
                  tile: int = 256, overlap: int = 16) -> torch.Tensor:
    """Apply `upscale` (a (1, C, h, w) -> (1, C, h*scale, w*scale) network) to `image` (1, C, H, W) tile by tile.

    `tile` is the size of the kept region of each tile in input pixels (0: the whole image at once).
    """
    if image.dim() != 4 or image.shape[0] != 1:
        raise GanforgeError(f"upscale_tiled expects one image shaped (1, C, H, W), got {tuple(image.shape)}")
    if tile < 0 or overlap < 0:
        raise GanforgeError(f"--tile and --overlap must be >= 0, got {tile} and {overlap}")
    _, channels, height, width = image.shape
    if tile == 0 or (height <= tile and width <= tile):
        return _checked(upscale(image), image, scale)
    out = None
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            y0, x0 = max(0, top - overlap), max(0, left - overlap)
            y1, x1 = min(height, bottom + overlap), min(width, right + overlap)
            piece = _checked(upscale(image[..., y0:y1, x0:x1]), image[..., y0:y1, x0:x1], scale)
            if out is None:
                out = piece.new_empty(1, piece.shape[1], height * scale, width * scale)
            keep = piece[..., (top - y0) * scale:(bottom - y0) * scale, (left - x0) * scale:(right - x0) * scale]
            out[..., top * scale:bottom * scale, left * scale:right * scale] = keep
    return out


def _checked(output: torch.Tensor, source: torch.Tensor, scale: int) -> torch.Tensor:
    expected = (source.shape[-2] * scale, source.shape[-1] * scale)
    if tuple(output.shape[-2:]) != expected:
        raise GanforgeError(f"the network turned {tuple(source.shape[-2:])} into {tuple(output.shape[-2:])}, "
                            f"not {expected} (x{scale})")
    return output


def interpolate_states(psnr: dict[str, torch.Tensor], gan: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """(1 - alpha) * PSNR weights + alpha * GAN weights (ESRGAN sec. 3.4); alpha 0 is the PSNR model."""
    if not 0.0 <= alpha <= 1.0:
        raise GanforgeError(f"--alpha must be in [0, 1], got {alpha}")
    if set(psnr) != set(gan) or any(psnr[k].shape != gan[k].shape for k in gan):
        raise GanforgeError("network interpolation needs two generators of the same architecture")
    return {k: torch.lerp(psnr[k].float(), gan[k].float(), alpha).to(gan[k].dtype) if gan[k].is_floating_point()
            else gan[k] for k in gan}


def load_upscaler(run, checkpoint: str = "last", device: str = "cpu", alpha: float | None = None,
                  psnr_run=None):
    """(upscale function on [-1, 1] (1, C, h, w) images, scale, channels) for a trained super-resolution run.

    With `alpha`, the generator is the interpolation (1 - alpha) * PSNR + alpha * this run's weights (ESRGAN network
    interpolation); the PSNR weights come from `psnr_run`, else from the run's `pretrained` option.
    """
    import ganforge
    from ganforge.api import generator_state
    from ganforge.families import having

    model = ganforge.load(run, checkpoint, device)
    if not model.family.capabilities.upscale:
        raise GanforgeError(f"{run}: a {model.config.model.name} run, not a super-resolution model "
                            f"({', '.join(having('upscale'))})")
    generator = model.generator
    if alpha is not None:
        source = psnr_run or model.family.options.pretrained
        if source is None:
            raise GanforgeError(f"--alpha needs the PSNR-oriented weights: pass --psnr RUN (the run {run} was not "
                                "initialised from one with --opt pretrained=RUN)")
        psnr = {k: v.to(device) for k, v in generator_state(source).items()}
        generator.load_state_dict(interpolate_states(psnr, generator.state_dict(), alpha))
    generator.eval()

    def upscale(image: torch.Tensor) -> torch.Tensor:
        return generator(image.to(device)).float()

    return upscale, model.family.scale, model.family.info.channels
