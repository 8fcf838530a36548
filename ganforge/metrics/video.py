"""Video metrics: per-frame Fréchet distance through an image extractor, digit identity consistency over a clip
(ganforge's digits classifier on each frame's digit, found by its ink), and motion statistics (mean
frame-to-frame change, the digit's speed, the share of frozen clips) of generated clips next to real ones.

Clips are float (N, T, C, H, W) in [-1, 1]; every figure of the generated clips comes with the real clips' own."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.errors import GanforgeError
from ganforge.metrics.evaluate import evaluate_images
from ganforge.metrics.extractors import Extractor, load_extractor

FROZEN = 0.2  # a clip is frozen when its mean frame-to-frame change is under this share of the real clips' mean


def check_clips(clips: Tensor, what: str) -> None:
    if not isinstance(clips, Tensor) or clips.dim() != 5 or not clips.is_floating_point():
        raise GanforgeError(f"{what} clips must be a float tensor (N, T, C, H, W) in [-1, 1]")
    if clips.shape[1] < 2:
        raise GanforgeError(f"{what} clips need at least 2 frames, got {clips.shape[1]}")


def frame_change(clips: Tensor) -> Tensor:
    """Per clip: the mean absolute change between consecutive frames, in [0, 1] pixel units."""
    return (clips[:, 1:] - clips[:, :-1]).abs().flatten(1).mean(1) / 2


def ink(clips: Tensor) -> Tensor:
    """Grey ink in [0, 1] per pixel, (N, T, H, W): white digits on black."""
    return ((clips.mean(2) + 1) / 2).clamp(0, 1)


def digit_centres(clips: Tensor, digits: int = 1, iterations: int = 8) -> Tensor:
    """Where the digits are in each frame: (N, T, digits, 2) as (x, y) in [-1, 1], the ink's centre of mass (two
    digits: 2-means of the ink's pixels, weighted by ink, started across the ink's principal axis)."""
    weights = ink(clips).flatten(2)  # (N, T, P)
    height, width = clips.shape[-2:]
    ys, xs = torch.meshgrid(torch.linspace(-1 + 1 / height, 1 - 1 / height, height),  # pixel centres, as
                            torch.linspace(-1 + 1 / width, 1 - 1 / width, width), indexing="ij")  # grid_sample's
    points = torch.stack([xs.flatten(), ys.flatten()], 1).to(clips)  # (P, 2)
    total = weights.sum(2, keepdim=True).clamp_min(1e-6)
    centre = (weights @ points) / total  # (N, T, 2)
    if digits == 1:
        return centre.unsqueeze(2)
    offsets = points - centre.unsqueeze(2)  # (N, T, P, 2)
    covariance = torch.einsum("ntp,ntpi,ntpj->ntij", weights, offsets, offsets) / total.unsqueeze(-1)
    _, vectors = torch.linalg.eigh(covariance + 1e-6 * torch.eye(2, device=clips.device))
    spread = vectors[..., -1] * 0.5  # start the two centres half a unit along the principal axis
    centres = torch.stack([centre - spread, centre + spread], 2)  # (N, T, 2, 2)
    for _ in range(iterations):
        distance = (points[None, None, :, None] - centres.unsqueeze(2)).square().sum(-1)  # (N, T, P, 2)
        member = F.one_hot(distance.argmin(-1), 2).to(clips) * weights.unsqueeze(-1)
        mass = member.sum(2).clamp_min(1e-6)  # (N, T, 2)
        centres = torch.einsum("ntpk,pi->ntki", member, points) / mass.unsqueeze(-1)
    return centres


def digit_crops(clips: Tensor, size: int, digits: int = 1, out: int = 32) -> Tensor:
    """Each frame's digits cut out around their centres: a `size`-px window (the digits' side in the frames)
    resampled to `out` px, as images (N * T * digits, 1, out, out) in [-1, 1]."""
    n, steps, _, height, width = clips.shape
    centres = digit_centres(clips, digits).flatten(0, 2)  # (N * T * digits, 2)
    theta = torch.zeros(len(centres), 2, 3, device=clips.device, dtype=clips.dtype)
    theta[:, 0, 0], theta[:, 1, 1] = size / width, size / height
    theta[:, :, 2] = centres
    frames = ink(clips).flatten(0, 1).repeat_interleave(digits, 0).unsqueeze(1)
    grid = F.affine_grid(theta, [len(centres), 1, out, out], align_corners=False)
    crops = F.grid_sample(frames, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return crops * 2 - 1


@torch.no_grad()
def digit_classes(clips: Tensor, size: int, digits: int = 1, classifier: str | Extractor = "digits",
                  batch_size: int = 500) -> Tensor:
    """The classified digits of every frame, (N, T, digits) sorted within a frame (so two digits that swap places
    keep their identity)."""
    model = load_extractor(classifier, device=clips.device)
    _, logits = model.extract(digit_crops(clips, size, digits), batch_size)
    n, steps = clips.shape[:2]
    return logits.argmax(1).view(n, steps, digits).sort(-1).values


def consistent(clips: Tensor, size: int, digits: int = 1, classifier: str | Extractor = "digits") -> Tensor:
    """Per clip: True when its classified digit(s) are the same in every frame."""
    check_clips(clips, "the")
    classes = digit_classes(clips, size, digits, classifier)
    return (classes == classes[:, :1]).all(2).all(1)


def identity_consistency(clips: Tensor, size: int, digits: int = 1, classifier: str | Extractor = "digits") -> float:
    """Share of clips whose classified digit(s) are the same in every frame. A frozen clip passes trivially:
    read it with the frozen share, or take `evaluate_clips`' consistent_moving (consistent and not frozen)."""
    return float(consistent(clips, size, digits, classifier).float().mean())


def centroid_speed(clips: Tensor) -> Tensor:
    """Per clip: the mean distance in pixels that the ink's centre of mass moves from frame to frame."""
    centre = digit_centres(clips, 1)[:, :, 0] * clips.shape[-1] / 2  # in pixels
    return (centre[:, 1:] - centre[:, :-1]).norm(dim=-1).mean(1)


def motion_statistics(fake: Tensor, real: Tensor, frozen: float = FROZEN) -> dict:
    """Mean frame-to-frame change and digit speed of the generated and the real clips, and the share of frozen
    clips (change under `frozen` times the real clips' mean change) among each."""
    check_clips(fake, "generated")
    check_clips(real, "real")
    fake_change, real_change = frame_change(fake), frame_change(real)
    threshold = frozen * float(real_change.mean())
    return {"mean_change": float(fake_change.mean()), "mean_change_real": float(real_change.mean()),
            "speed_px": float(centroid_speed(fake).mean()), "speed_px_real": float(centroid_speed(real).mean()),
            "frozen": float((fake_change < threshold).float().mean()),
            "frozen_real": float((real_change < threshold).float().mean()), "frozen_threshold": threshold}


def evaluate_clips(fake: Tensor, real: Tensor, extractor: str | Extractor | None = None, digit_size: int | None = None,
                   digits: int = 1, frames_per_clip: int = 4, seed: int = 0, batch_size: int = 250,
                   real_key: str | None = None) -> dict:
    """Every video score of FAKE against REAL clips: 'frame_fd' (Fréchet distance of `frames_per_clip` evenly
    spaced frames of each clip, through an image extractor), motion statistics, and, when `digit_size` is given
    (moving digits), the identity consistency of the generated and of the real clips and the share of clips that
    are both identity-consistent and not frozen ('consistent_moving'); plus the 'record'."""
    check_clips(fake, "generated")
    check_clips(real, "real")
    pick = torch.linspace(0, fake.shape[1] - 1, min(frames_per_clip, fake.shape[1])).round().long()
    real_pick = torch.linspace(0, real.shape[1] - 1, min(frames_per_clip, real.shape[1])).round().long()
    scores = evaluate_images(fake[:, pick].flatten(0, 1), real[:, real_pick].flatten(0, 1), ("fid",), extractor,
                             real_key=real_key, batch_size=batch_size, seed=seed,
                             image_format=f"tensor; {len(pick)} evenly spaced frames per clip")
    result = {"frame_fd": scores["fid"], "motion": motion_statistics(fake, real)}
    if digit_size is not None:
        threshold = result["motion"]["frozen_threshold"]
        for clips, suffix in ((fake, ""), (real, "_real")):
            same = consistent(clips, digit_size, digits)
            result[f"identity_consistency{suffix}"] = float(same.float().mean())
            result[f"consistent_moving{suffix}"] = float((same & (frame_change(clips) >= threshold)).float().mean())
    result["record"] = scores["record"]
    return result
