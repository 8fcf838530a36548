"""Perceptual (feature-space) loss: VGG19 features (Johnson et al. 2016; SRGAN, ESRGAN) or a ganforge fallback.

VGG19 weights come from `vgg_weights=PATH` (a torchvision state dict, .pth or .safetensors), else from the torch hub
cache, else torchvision downloads them when online. Offline without them the error says how to provide the file;
`perceptual=ganforge` (a shipped ganforge classifier's conv features) or `perceptual=none` must be chosen
explicitly: the loss never switches network silently.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.errors import GanforgeError

KINDS = ("vgg", "ganforge", "none")
VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's IMAGENET1K_V1 file name in the hub cache
VGG19_STAGES = (2, 2, 4, 4, 4)  # convolutions per stage; each stage but the last ends in a max-pool
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_layer_index() -> dict[str, int]:
    """Names of VGG19 `features` layers ('conv5_4', 'relu5_4', 'pool4', ...) to their index."""
    names, index = {}, 0
    for stage, convs in enumerate(VGG19_STAGES, start=1):
        for conv in range(1, convs + 1):
            names[f"conv{stage}_{conv}"], names[f"relu{stage}_{conv}"] = index, index + 1
            index += 2
        names[f"pool{stage}"] = index
        index += 1
    return names


def _hub_file() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise GanforgeError(f"model.options.vgg_weights: no such file {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise GanforgeError(f"model.options.vgg_weights: cannot read {path} ({type(error).__name__})") from None


def load_vgg19_features(weights: str | Path | None = None) -> nn.Sequential:
    """torchvision's VGG19 `features` with ImageNet weights from `weights`, the hub cache, or a download."""
    from torchvision.models import VGG19_Weights, vgg19

    if weights is not None:
        state = _read_state(Path(weights).expanduser())
        model = vgg19(weights=None)
        features = {k.removeprefix("features."): v for k, v in state.items() if not k.startswith("classifier.")}
        missing, unexpected = model.features.load_state_dict(features, strict=False)
        if missing or unexpected:
            raise GanforgeError(f"model.options.vgg_weights: {weights} is not a VGG19 state dict "
                                f"(missing {len(missing)} keys, e.g. {(missing or unexpected)[0]})")
        return model.features
    try:
        return vgg19(weights=VGG19_Weights.IMAGENET1K_V1).features
    except Exception as error:  # offline: URLError, OSError, RuntimeError depending on where it fails
        raise GanforgeError(
            f"perceptual loss: VGG19 ImageNet weights not found in {_hub_file()} and the download failed "
            f"({type(error).__name__}; offline?). Copy {VGG19_FILE} there, or pass --opt vgg_weights=PATH, or choose "
            "--opt perceptual=ganforge (ganforge's own feature network) or --opt perceptual=none") from None


def check_available(kind: str, channels: int, vgg_weights: str | None = None) -> None:
    """Fail before training starts when the perceptual network cannot be had (downloads VGG19 when online)."""
    if kind not in KINDS:
        raise GanforgeError(f"model.options.perceptual must be one of {', '.join(KINDS)}, got '{kind}'")
    if kind == "ganforge":
        GanforgeFeatures(channels)
    elif kind == "vgg" and vgg_weights is not None:
        if not Path(vgg_weights).expanduser().is_file():
            raise GanforgeError(f"model.options.vgg_weights: no such file {vgg_weights}")
    elif kind == "vgg" and not _hub_file().is_file():
        load_vgg19_features()


class VGGFeatures(nn.Module):
    """Frozen VGG19 features up to `layer`, on [-1, 1] images (grey repeated to RGB, ImageNet normalisation)."""

    def __init__(self, features: nn.Sequential, layer: str = "conv5_4"):
        super().__init__()
        index = vgg19_layer_index()
        if layer not in index:
            raise GanforgeError(f"model.options.perceptual_layer: unknown VGG19 layer '{layer}' "
                                f"(e.g. conv5_4, relu5_4, relu2_2)")
        self.net = features[:index[layer] + 1].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        return self.net(((images + 1) / 2 - self.mean) / self.std)


class GanforgeFeatures(nn.Module):
    """Frozen convolutional features of a ganforge domain classifier ('cifar10' for RGB, 'digits' for grey)."""

    def __init__(self, channels: int, extractor: str | None = None):
        super().__init__()
        from ganforge.metrics import default_extractor_for, load_extractor

        name = extractor or default_extractor_for(channels, 32)
        try:
            model = load_extractor(name)
        except (GanforgeError, OSError) as error:
            raise GanforgeError(f"perceptual=ganforge: cannot load the '{name}' feature network ({error}); "
                                "use --opt perceptual=vgg or none") from None
        self.name, self.channels = name, model.channels
        self.net = model.body[:-2].eval().requires_grad_(False)  # every conv stage, before global pooling

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from ganforge.metrics.extractors import adapt_channels

        return self.net(adapt_channels(images, self.channels))


class PerceptualLoss(nn.Module):
    """Distance between feature maps of the output and the target (L1 as in ESRGAN, or MSE as in SRGAN)."""

    def __init__(self, features: nn.Module, criterion: str = "l1"):
        super().__init__()
        if criterion not in ("l1", "mse"):
            raise GanforgeError(f"perceptual criterion must be l1 or mse, got '{criterion}'")
        self.features, self.criterion = features, criterion

    def train(self, mode: bool = True):
        return super().train(False)  # the feature network stays in eval mode (no batch-norm updates)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_features = self.features(target)
        distance = F.l1_loss if self.criterion == "l1" else F.mse_loss
        return distance(self.features(output), target_features)


def perceptual_loss(kind: str, channels: int, layer: str = "conv5_4", vgg_weights: str | None = None,
                    criterion: str = "l1") -> PerceptualLoss | None:
    """The perceptual loss named by `kind` (vgg | ganforge | none); None for 'none'."""
    if kind not in KINDS:
        raise GanforgeError(f"model.options.perceptual must be one of {', '.join(KINDS)}, got '{kind}'")
    if kind == "none":
        return None
    if kind == "vgg":
        return PerceptualLoss(VGGFeatures(load_vgg19_features(vgg_weights), layer), criterion)
    return PerceptualLoss(GanforgeFeatures(channels), criterion)
