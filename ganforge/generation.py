"""Generation beyond plain sampling, shared by the commands and the web UI: latent walks (models that make images
from noise), style-mixing grids (families with style_mixing) and reconstructions (families with encode). Each takes a
loaded `ganforge.GAN` and returns samples for `ganforge.media.save`; checks of flags and files stay with the callers."""

from __future__ import annotations

import torch

from ganforge import media
from ganforge.errors import GanforgeError


def latent_walk(model, n: int, points: int, frames: int, seed: int = 0, fps: float = 12.0,
                progress: bool = False) -> media.Video:
    """`n` looping walks (clips side by side when saved with nrow=n) through `points` random latents (seeds seed,
    seed + 1...), `frames` frames per leg, spherically interpolated."""
    from ganforge.media.progress import track
    from ganforge.media.walks import walk_inputs

    capabilities = model.family.capabilities
    if capabilities.modality != "image" or not capabilities.from_noise:
        raise GanforgeError(f"interpolate walks the latent space of models that make images from noise; "
                            f"{model.config.model.name} does not")
    keys = [model.sample_inputs(n, seed + k) for k in range(points)]
    legs = list(walk_inputs(keys, frames))
    walk = [model.generate(inputs).tensor for inputs in track(legs, "interpolate", enabled=progress)]
    return media.Video(torch.stack(walk, 1), fps=fps)


def style_mix_grid(model, rows: int, cols: int, layers: str = "coarse", truncation: float = 1.0,
                   seed: int = 0) -> tuple[media.Images, range]:
    """The style-mixing grid as (rows + 1) x (cols + 1) images (save with nrow=cols + 1): a white corner, the
    sources across the top, the destinations down the left and each mix in between; and the style layers mixed."""
    family, generator = model.family, model.generator
    span = family.layer_range(generator, layers)
    rng = torch.Generator().manual_seed(seed)
    latent = model.config.model.latent_dim
    destination, source = torch.randn(rows, latent, generator=rng), torch.randn(cols, latent, generator=rng)
    destination, source = destination.to(model.device), source.to(model.device)
    mixed = family.style_mix(generator, destination, source, span, truncation).clamp(-1, 1)
    tops = family.style_mix(generator, source, source[:1], range(0), truncation)[:, 0]
    lefts = family.style_mix(generator, destination, destination[:1], range(0), truncation)[:, 0]
    blank = torch.ones_like(tops[0])  # the top-left corner is left white
    cells = [blank, *tops]
    for r in range(rows):
        cells += [lefts[r], *mixed[r]]
    return media.Images(torch.stack(cells).clamp(-1, 1).cpu()), span


def fit_image(image: torch.Tensor, resolution: int) -> torch.Tensor:
    """An image (1, C, H, W) in [-1, 1] resized (shorter side) and centre-cropped to `resolution` square."""
    import torch.nn.functional as F

    h, w = image.shape[-2:]
    scale = resolution / min(h, w)
    size = (max(resolution, round(h * scale)), max(resolution, round(w * scale)))
    image = F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)
    top, left = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    return image[..., top:top + resolution, left:left + resolution]


def read_images(paths: list, resolution: int, channels: int) -> torch.Tensor:
    """Image files resized (shorter side) and centre-cropped to a model's size, as float (N, C, H, W) in [-1, 1]."""
    from pathlib import Path

    from ganforge.data import read_image
    from ganforge.media.images import from_picture

    out = []
    for path in map(Path, paths):
        if not path.is_file():
            raise GanforgeError(f"{path}: no such image file")
        out.append(fit_image(from_picture(read_image(path, "L" if channels == 1 else "RGB")), resolution))
    return torch.cat(out)


@torch.no_grad()
def reconstruct(model, images: torch.Tensor) -> torch.Tensor:
    """Images (N, C, H, W) at the model's size encoded and decoded again by a family with encode, in [-1, 1]."""
    return model.family.reconstruct(model.generator, images.to(model.device)).clamp(-1, 1).cpu()
