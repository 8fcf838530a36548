"""Running an image network on images of any size with bounded memory: translate (scale 1, strided generators)
and upscale (scale 2 or 4) share this.

Each tile is run with `overlap` pixels of real context on every side (clipped at the image border; widened to whole
strides, as strided networks are shift-equivariant only by whole strides) and only its centre is kept, so when the
overlap covers the network's receptive field the result equals whole-image inference (up to float rounding).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError

Net = Callable[[torch.Tensor], torch.Tensor]


def pad_run(net: Net, image: torch.Tensor, stride: int = 1, scale: int = 1) -> torch.Tensor:
    """net(image) for (N, C, H, W) of any size: reflect-pad to a multiple of `stride`, check that the network
    scaled the padded input by `scale`, and crop the output back to (H * scale, W * scale)."""
    h, w = image.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    if ph or pw:
        image = F.pad(image, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
    output = net(image)
    expected = ((h + ph) * scale, (w + pw) * scale)
    if tuple(output.shape[-2:]) != expected:
        raise GanforgeError(f"the network turned {h + ph}x{w + pw} pixels into "
                            f"{output.shape[-2]}x{output.shape[-1]}, not {expected[0]}x{expected[1]} (x{scale})")
    return output[..., :h * scale, :w * scale]


def _span(start: int, end: int, overlap: int, stride: int, length: int) -> tuple[int, int]:
    """The input range run for the kept range [start, end): `overlap` more on each side, in whole strides."""
    low = max(0, (start - overlap) // stride * stride)
    high = min(length, -(-(end + overlap) // stride) * stride)
    return low, high


@torch.no_grad()
def tiled(net: Net, image: torch.Tensor, tile: int, overlap: int, stride: int = 1, scale: int = 1) -> torch.Tensor:
    """net(image) for (N, C, H, W) images of any size, `tile` x `tile` input pixels at a time (0: all at once)
    with `overlap` pixels of context around each; the network maps h x w to (h * scale) x (w * scale) for sizes
    that are multiples of `stride`."""
    if tile < 0 or tile % stride:
        raise GanforgeError(f"--tile {tile} must be 0 (whole image) or a positive multiple of the generator's "
                            f"stride {stride}")
    if overlap < 0:
        raise GanforgeError(f"--overlap must be >= 0, got {overlap}")
    height, width = image.shape[-2:]
    if tile == 0 or (height <= tile and width <= tile):
        return pad_run(net, image, stride, scale)
    out = None
    for top in range(0, height, tile):
        bottom = min(top + tile, height)
        y0, y1 = _span(top, bottom, overlap, stride, height)
        for left in range(0, width, tile):
            right = min(left + tile, width)
            x0, x1 = _span(left, right, overlap, stride, width)
            piece = pad_run(net, image[..., y0:y1, x0:x1], stride, scale)
            if out is None:
                out = piece.new_empty(*piece.shape[:-2], height * scale, width * scale)
            out[..., top * scale:bottom * scale, left * scale:right * scale] = \
                piece[..., (top - y0) * scale:(bottom - y0) * scale, (left - x0) * scale:(right - x0) * scale]
    return out
