"""Structured motion for video generators: one appearance per clip, moved by per-frame spatial transforms.

The content latent makes ONE appearance image (a sprite with its mask, over a still background, both from the same
image generator, as in the foreground/background streams of VGAN, Vondrick et al. 2016, "Generating Videos with
Scene Dynamics"), and a recurrent network on per-frame motion noise (MoCoGAN's GRU) outputs a spatial transform per
frame (translation, optionally scale and rotation) that warps it with `affine_grid`/`grid_sample` (Jaderberg et al.
2015, "Spatial Transformer Networks"; transformation-based video models as in van Amersfoort et al. 2017). Identity
is kept by construction; motion is rigid (2-D similarity transforms of the sprite, or of the whole frame when there
is no background layer: a camera pan/zoom), never a deformation of the object.

Translation integrates per-frame velocities from a start position and is folded back into the frame by reflection
(a triangle wave), so objects bounce off the edges and clips of any length stay in the frame."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

TRANSFORMS = ("translate", "similarity")
LAYERS = ("sprite", "frame")


def reflect(position: torch.Tensor, limit: float) -> torch.Tensor:
    """Fold positions into [-limit, limit] as a ball bouncing between walls: the identity inside, mirrored outside."""
    return limit - (torch.remainder(position + limit, 4 * limit) - 2 * limit).abs()


def warp(images: torch.Tensor, theta: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """images (N, C, H, W) and theta (N, T, 2, 3) (output -> input coordinates, affine_grid's convention) ->
    (N, T, C, H, W): every image under each of its T transforms."""
    n, steps = theta.shape[:2]
    flat = images.unsqueeze(1).expand(-1, steps, -1, -1, -1).flatten(0, 1)
    grid = F.affine_grid(theta.flatten(0, 1), list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode=padding, align_corners=False)
    return out.unflatten(0, (n, steps))


def similarity(shift: torch.Tensor, scale: torch.Tensor | None = None,
               angle: torch.Tensor | None = None) -> torch.Tensor:
    """affine_grid's theta (..., 2, 3) that scales by `scale`, rotates by `angle` (radians) about the frame's
    centre, then moves the content by `shift` (..., 2) as (x, y) in [-1, 1] frame units."""
    scale = torch.ones_like(shift[..., 0]) if scale is None else scale
    angle = torch.zeros_like(shift[..., 0]) if angle is None else angle
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    inverse = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)  # (..., 2, 2)
    offset = -(inverse @ shift.unsqueeze(-1))  # the input point that lands on x_out is inverse (x_out - shift)
    return torch.cat([inverse, offset], -1)


class TransformMotionGenerator(nn.Module):
    """Clips from a content latent and per-frame motion noise: appearance = image(z_C) once per clip; z_M(t) =
    GRU(eps_t, z_M(t-1)) from h0 = eps_0 (as MoCoGAN); transform(t) from z_M(t); frame(t) = warp(appearance).

    layers "sprite": the image generator makes 2C + 1 channels, a sprite, its mask and a still background; the
    warped sprite is composited over the background with the warped mask. "frame": it makes C channels and the whole
    image is warped (edge pixels extend past the border), i.e. camera motion."""

    def __init__(self, content_dim: int, motion_dim: int, image: nn.Module, channels: int,
                 transform: str = "translate", layers: str = "sprite", shift: float = 0.6, speed: float = 0.25,
                 whole_pixels: bool = False):
        super().__init__()
        self.content_dim, self.motion_dim, self.channels = content_dim, motion_dim, channels
        self.transform, self.layers, self.shift, self.speed = transform, layers, shift, speed
        self.whole_pixels = whole_pixels and transform == "translate"
        self.recurrent = nn.GRUCell(motion_dim, motion_dim)
        self.image = image  # content_dim -> (2C + 1 or C, H, W)
        self.start = nn.Linear(motion_dim, 2)  # start position from h0
        self.velocity = nn.Linear(motion_dim, 2 + (2 if transform == "similarity" else 0))  # per frame

    def reset_heads(self) -> None:
        """PyTorch's default initialisation of the motion heads (DCGAN's N(0, 0.02) would start almost still)."""
        self.start.reset_parameters()
        self.velocity.reset_parameters()

    def transforms(self, noise: torch.Tensor) -> torch.Tensor:
        """noise (N, T + 1, dz_M) -> theta (N, T, 2, 3), the transform of every frame."""
        steps = noise.shape[1] - 1
        state, motion = noise[:, 0], []
        start = self.shift * torch.tanh(self.start(state))
        for t in range(steps):
            state = self.recurrent(noise[:, t + 1], state)
            motion.append(state)
        raw = self.velocity(torch.stack(motion, 1))  # (N, T, 2 or 4)
        position = reflect(start.unsqueeze(1) + self.speed * torch.tanh(raw[..., :2]).cumsum(1), self.shift)
        if self.transform == "translate":
            return similarity(position)
        return similarity(position, torch.exp(0.3 * torch.tanh(raw[..., 2])), 0.5 * torch.tanh(raw[..., 3]))

    def appearance(self, content: torch.Tensor) -> torch.Tensor:
        """The content's still image(s): (N, 2C + 1, H, W) for sprites (sprite, mask logit, background), else C."""
        return self.image(content)

    def render(self, appearance: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Frames (N, T, C, H, W) in [-1, 1]: the appearance under each frame's transform."""
        if self.whole_pixels:  # frames moved by whole pixels (sharp, as sprites pasted at integer places), with
            # the gradient of the continuous shift (straight through the rounding: sharp forward, smooth backward)
            pixel = theta.new_tensor([2 / appearance.shape[-1], 2 / appearance.shape[-2]])
            snapped = torch.cat([theta[..., :2], (torch.round(theta[..., 2] / pixel) * pixel).unsqueeze(-1)], -1)
            smooth = self._render(appearance, theta)
            return self._render(appearance, snapped) + smooth - smooth.detach()
        return self._render(appearance, theta)

    def _render(self, appearance: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        c = self.channels
        if self.layers == "frame":
            return warp(appearance, theta, "border")
        sprite, mask, background = appearance[:, :c], (appearance[:, c:c + 1] + 1) / 2, appearance[:, c + 1:]
        moved = warp(torch.cat([sprite * mask, mask], 1), theta)  # premultiplied: zeros outside are transparent
        return moved[:, :, :c] + (1 - moved[:, :, c:]) * background.unsqueeze(1)

    def forward(self, content: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """content (N, dz_C), noise (N, T + 1, dz_M) -> clips (N, T, C, H, W)."""
        return self.render(self.appearance(content), self.transforms(noise))


def still(n: int, steps: int, device=None) -> torch.Tensor:
    """theta (n, steps, 2, 3) of the identity transform: every frame the appearance as it is."""
    return similarity(torch.zeros(n, steps, 2, device=device))


__all__ = ["LAYERS", "TRANSFORMS", "TransformMotionGenerator", "reflect", "similarity", "still", "warp"]
