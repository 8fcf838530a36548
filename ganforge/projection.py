"""Latent projection: find the latent whose generated image reconstructs a real one (the image-to-latent search of
Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN", sec. 5). It works in the space a family
declares (`capabilities.latent`: z, or StyleGAN's W), minimises a pixel plus a feature distance, and keeps frames of
the search for an animation. Used by `ganforge project`; `latent_file_inputs` feeds a saved latent back
(`ganforge sample --latents`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge import media
from ganforge.errors import GanforgeError

VGG_FILE = "vgg16-397923af.pth"  # torchvision's ImageNet VGG16 weights, as torch.hub caches them


@dataclass
class Projection:
    """The outcome of `project`: the latent (1, D) in the family's latent space and the inputs that generate from it,
    the target and its reconstruction (1, C, H, W) in [-1, 1], the loss per step, and frames of the search."""

    latent: torch.Tensor
    inputs: dict[str, torch.Tensor]
    target: torch.Tensor
    reconstruction: torch.Tensor
    losses: list[float]
    random_loss: float  # the median loss of the random latents tried as starting points
    frames: list[torch.Tensor] = field(default_factory=list)

    def animation(self, fps: float = 10.0) -> media.Video:
        """The target and the reconstruction over the search, side by side (save with nrow=2)."""
        clip = torch.cat(self.frames)
        return media.Video(torch.stack([self.target.expand_as(clip), clip]), fps=fps)


class FeatureDistance(nn.Module):
    """An LPIPS-style distance without learned weights (Zhang et al. 2018, eq. 1 with w = 1): activations of several
    stages of a fixed network, unit-normalised along channels, squared differences averaged over positions and summed
    over stages."""

    def __init__(self, stages: list[nn.Module], preprocess, name: str):
        super().__init__()
        self.stages, self.preprocess, self.name = nn.ModuleList(stages), preprocess, name
        self.eval().requires_grad_(False)

    def activations(self, images: torch.Tensor) -> list[torch.Tensor]:
        out, x = [], self.preprocess(images)
        for stage in self.stages:
            x = stage(x)
            out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-8))
        return out

    def forward(self, images: torch.Tensor, target: list[torch.Tensor]) -> torch.Tensor:
        """Distance of each image (N,) from the target's activations (`activations` of one image)."""
        return sum((a - b).pow(2).sum(1).flatten(1).mean(1) for a, b in zip(self.activations(images), target))


def feature_distance(name: str, channels: int, device: torch.device) -> FeatureDistance | None:
    """The feature distance `name` names: 'auto' (ganforge's extractor for the images: digits for grey, cifar10 for
    RGB), 'digits', 'cifar10', a classifier's .safetensors path, 'vgg' (torchvision's VGG16 ImageNet weights, when
    in the torch hub cache), or 'none' (pixels only)."""
    if name == "none":
        return None
    if name == "vgg":
        return _vgg_distance(device)
    from ganforge.metrics.extractors import DomainClassifier, default_extractor_for, load_extractor

    extractor = load_extractor(default_extractor_for(channels, 0) if name == "auto" else name, device)
    if not isinstance(extractor, DomainClassifier):
        raise GanforgeError(f"--features {name}: projection uses the stages of a ganforge classifier (digits, cifar10, "
                            f"a classifier's .safetensors) or vgg; {extractor.name} is not one")
    stages, current = [], []
    for layer in extractor.body:  # one stage per resolution: the conv blocks before each pooling
        if isinstance(layer, (nn.MaxPool2d, nn.AdaptiveAvgPool2d)):
            stages.append(nn.Sequential(*current))
            current = [layer]
        elif not isinstance(layer, nn.Flatten):
            current.append(layer)
    return FeatureDistance(stages, extractor.preprocess, extractor.name).to(device)


def _vgg_distance(device: torch.device) -> FeatureDistance:
    import torchvision

    path = Path(torch.hub.get_dir()) / "checkpoints" / VGG_FILE
    if not path.is_file():
        raise GanforgeError(f"--features vgg needs torchvision's VGG16 ImageNet weights at {path} (ganforge downloads "
                            "nothing); copy them there, or use --features auto (ganforge's own extractor)")
    vgg = torchvision.models.vgg16()
    vgg.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    cuts = [0, 4, 9, 16, 23]  # relu1_2, relu2_2, relu3_3, relu4_3: the layers LPIPS uses
    stages = [vgg.features[a:b] for a, b in zip(cuts, cuts[1:])]
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)

    def preprocess(images: torch.Tensor) -> torch.Tensor:
        images = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        if images.shape[-1] < 64:  # VGG's four poolings need room
            images = F.interpolate(images, size=(64, 64), mode="bilinear", align_corners=False)
        return ((images + 1) / 2 - mean) / std

    return FeatureDistance(stages, preprocess, "vgg16").to(device)


def _candidates(model, label: int | None, starts: int, seed: int) -> dict[str, torch.Tensor]:
    """Generator inputs in the latent space: `starts` random draws (per class when the class is not given)."""
    family = model.family
    rng = torch.Generator().manual_seed(seed)
    if family.capabilities.conditional:
        classes = [label] if label is not None else list(range(len(model.classes)))
        labels = torch.tensor(classes).repeat_interleave(starts)
        inputs = family.sample_inputs(len(labels), rng, labels=labels)
    else:
        inputs = family.sample_inputs(starts, rng)
    inputs.pop("truncation", None)  # projection searches the untruncated space
    return latent_inputs(model, inputs)


def latent_inputs(model, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`inputs` on the model's device with the noise mapped into its latent space."""
    with torch.no_grad():
        return model.family.latent_inputs(model.generator, {k: v.to(model.device) for k, v in inputs.items()})


def project(model, target: torch.Tensor, steps: int = 200, lr: float = 0.1, features: str = "auto",
            feature_weight: float = 1.0, pixel_weight: float = 1.0, prior_weight: float = 1e-3,
            label: int | None = None, starts: int = 8, seed: int = 0, frames: int = 40,
            progress: bool = False) -> Projection:
    """Project `target` (1, C, H, W) in [-1, 1] at the model's size into the latent space of `model` (a loaded
    ganforge.GAN of a family making images from noise): the best of `starts` random latents (per class for
    conditional models unless `label` is given), then `steps` Adam steps on pixel MSE + feature distance + a small
    Gaussian prior on the latent (its mean and spread measured from 512 mapped draws)."""
    from ganforge.media.progress import track

    family, generator, device = model.family, model.generator, model.device
    capabilities = family.capabilities
    if capabilities.modality != "image" or not capabilities.from_noise:
        raise GanforgeError(f"project searches the latent space of models that make images from noise; "
                            f"{model.config.model.name} does not")
    if label is not None and not capabilities.conditional:
        raise GanforgeError(f"--class: model {model.config.model.name} is unconditional")
    if label is not None and not 0 <= label < len(model.classes):
        raise GanforgeError(f"--class {label} out of range: this model has {len(model.classes)} classes")
    if steps < 1 or starts < 1 or not lr > 0:
        raise GanforgeError(f"--steps and --starts must be at least 1 and --lr positive; got {steps}, {starts}, {lr}")
    key = capabilities.latent
    generator.eval().requires_grad_(False)
    target = target.to(device)
    distance = feature_distance(features, target.shape[1], device) if feature_weight > 0 else None
    target_features = distance.activations(target) if distance is not None else None

    def loss_of(inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        images = family.generate(generator, inputs)
        loss = pixel_weight * (images - target).pow(2).flatten(1).mean(1)
        if distance is not None:
            loss = loss + feature_weight * distance(images, target_features)
        return loss, images

    spread = _candidates(model, None, 512 // max(1, len(model.classes)) if capabilities.conditional else 512,
                         seed + 1)[key]
    mean, std = spread.mean(0, keepdim=True), spread.std(0, keepdim=True).clamp_min(1e-6)
    candidates = _candidates(model, label, starts, seed)
    with torch.no_grad():
        scores = torch.cat([loss_of({k: v[i:i + 64] for k, v in candidates.items()})[0]
                            for i in range(0, len(candidates[key]), 64)])
    best = int(scores.argmin())
    fixed = {k: v[best:best + 1] for k, v in candidates.items() if k != key}  # e.g. the class label
    # optimise normalised coordinates u (latent = mean + std u): one learning rate suits z and W alike
    u = ((candidates[key][best:best + 1] - mean) / std).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([u], lr=lr, betas=(0.9, 0.999))
    losses, shots = [], []
    keep = set(np.linspace(0, steps, min(frames, steps + 1)).round().astype(int).tolist())
    for step in track(range(steps + 1), "project", enabled=progress):
        # the StyleGAN2 projector's schedule: a short warm-up, then a cosine ramp-down of the learning rate
        t = step / steps
        ramp = 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1 - t) / 0.25))
        optimizer.param_groups[0]["lr"] = lr * min(1.0, t / 0.05) * ramp
        loss, images = loss_of(fixed | {key: mean + std * u})
        total = loss.sum() + prior_weight * u.pow(2).mean()
        losses.append(float(total.detach()))
        if step in keep:
            shots.append(images.detach().clamp(-1, 1).cpu())
        if step == steps:
            break
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
    latent = (mean + std * u).detach()
    inputs = {k: v.cpu() for k, v in (fixed | {key: latent}).items()}
    return Projection(latent.cpu(), inputs, target.cpu(), shots[-1], losses, float(scores.median()), shots)


def latent_file_inputs(model, path: Path, label: int | None = None) -> dict[str, torch.Tensor]:
    """Generator inputs from a latent file `project` wrote (.npy, one latent per row), for `sample --latents`."""
    family = model.family
    if family.capabilities.modality != "image" or not family.capabilities.from_noise:
        raise GanforgeError(f"--latents: model {model.config.model.name} does not make images from latents (latent "
                            "files come from `ganforge project`)")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise GanforgeError(f"--latents {path}: cannot read it as a .npy array ({error})") from None
    key = family.capabilities.latent
    expected = tuple(_candidates(model, 0 if family.capabilities.conditional else None, 1, 0)[key].shape[1:])
    latents = torch.as_tensor(np.atleast_2d(array), dtype=torch.float32)
    if tuple(latents.shape[1:]) != expected or not np.issubdtype(array.dtype, np.number):
        raise GanforgeError(f"--latents {path}: expected latents of shape (N, {', '.join(map(str, expected))}) in "
                            f"{key} space, got {tuple(array.shape)}")
    inputs = {key: latents}
    if family.capabilities.conditional:
        if label is None:
            raise GanforgeError(f"--latents: model {model.config.model.name} is conditional; give the class with "
                                "--class (`ganforge project` prints it)")
        if not 0 <= label < len(model.classes):
            raise GanforgeError(f"--class {label} out of range: this model has {len(model.classes)} classes")
        inputs["label"] = torch.full((len(latents),), label, dtype=torch.long)
    elif label is not None:
        raise GanforgeError(f"model {model.config.model.name} is unconditional: it takes no class labels")
    return inputs
