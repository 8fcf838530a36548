"""Feature extractors: images in [-1, 1] -> (features, logits), with a name and weights hash for the record."""
from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn

from ganforge.errors import GanforgeError

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
BUILTIN = ("digits", "cifar10", "spoken-digits")  # spoken-digits: an audio extractor (ganforge.metrics.audio)

# called as report(images done, images total) after every batch of Extractor.extract; see extraction_progress
_report: ContextVar[Callable[[int, int], None] | None] = ContextVar("extraction_report", default=None)


@contextmanager
def extraction_progress(report: Callable[[int, int], None]) -> Iterator[None]:
    """Within the block, every Extractor.extract calls report(images done, images total) after each batch."""
    token = _report.set(report)
    try:
        yield
    finally:
        _report.reset(token)


def cache_dir() -> Path:
    """Root of ganforge's on-disk cache: $GANFORGE_CACHE, else ~/.cache/ganforge."""
    return Path(os.environ.get("GANFORGE_CACHE") or Path.home() / ".cache" / "ganforge")


def file_hash(path: str | Path, length: int = 12) -> str:
    """Truncated sha256 of a file's bytes: the weights hash that every score names."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]


def adapt_channels(images: Tensor, channels: int) -> Tensor:
    """Grey -> RGB by repetition, RGB -> grey by ITU-R 601 luma; other mismatches are user errors."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1)
    if have == 3 and channels == 1:
        weights = images.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (images * weights).sum(1, keepdim=True)
    raise GanforgeError(f"images have {have} channels; extractors accept 1 (grey) or 3 (RGB)")


class Extractor(nn.Module):
    """Base class: subclasses set the attributes and implement `embed` on preprocessed images."""

    name: str
    weights_hash: str
    resolution: int
    channels: int
    resize_filter: str
    num_features: int
    classes: list[str]
    antialias: bool = True

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def preprocess(self, images: Tensor) -> Tensor:
        """Adapt channels and resize to the extractor's input size with its fixed filter."""
        if images.dim() != 4:
            raise GanforgeError(f"images must be N,C,H,W; got shape {tuple(images.shape)}")
        images = adapt_channels(images.float(), self.channels)
        if images.shape[-2:] != (self.resolution, self.resolution):
            images = F.interpolate(
                images, size=(self.resolution, self.resolution), mode="bilinear",
                align_corners=False, antialias=self.antialias,
            )
        return images

    def embed(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        return self.embed(self.preprocess(images))

    @torch.inference_mode()
    def extract(self, images: Tensor, batch_size: int = 250) -> tuple[Tensor, Tensor]:
        """Features and logits for all images, in batches, as float32 CPU tensors."""
        self.eval()
        device = next(self.parameters()).device
        features, logits = [], []
        report = _report.get()
        for start in range(0, len(images), batch_size):
            f, l = self(images[start:start + batch_size].to(device))
            features.append(f.float().cpu())
            logits.append(l.float().cpu())
            if report is not None:
                report(min(start + batch_size, len(images)), len(images))
        if not features:
            raise GanforgeError("no images to extract features from")
        return torch.cat(features), torch.cat(logits)


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DomainClassifier(Extractor):
    """A small VGG-style classifier; its penultimate layer gives features, its last layer class logits."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = config
        self.name = config["name"]
        self.weights_hash = config.get("weights_hash", "untrained")
        self.resolution = config["resolution"]
        self.channels = config["channels"]
        self.classes = list(config["classes"])
        self.num_features = config["feature_dim"]
        self.resize_filter = f"bilinear-antialias@{self.resolution}"
        widths = config["widths"]
        layers, cin = [], self.channels
        for i, width in enumerate(widths):
            layers += [_conv_block(cin, width), _conv_block(width, width)]
            layers.append(nn.MaxPool2d(2) if i < len(widths) - 1 else nn.AdaptiveAvgPool2d(1))
            cin = width
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.penultimate = nn.Sequential(nn.Linear(cin, self.num_features), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(config.get("dropout", 0.3))
        self.head = nn.Linear(self.num_features, len(self.classes))

    def embed(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.penultimate(self.body(x))
        return features, self.head(self.dropout(features))


def classifier_config(name: str, classes: list[str], channels: int, resolution: int = 32) -> dict:
    """The default architecture config for a ganforge domain classifier (about 220k parameters)."""
    return {"architecture": "classifier", "name": name, "classes": list(classes), "channels": channels,
            "resolution": resolution, "widths": [32, 64, 96], "feature_dim": 128, "dropout": 0.3}


def _load_classifier(weights: Path) -> DomainClassifier:
    config_path = weights.with_suffix(".json")
    if not config_path.exists():
        raise GanforgeError(f"extractor config {config_path} is missing (it must sit next to {weights.name})")
    config = json.loads(config_path.read_text())
    config["weights_hash"] = file_hash(weights)
    if config.get("architecture") == "audio-classifier":
        from ganforge.metrics.audio_classifier import AudioClassifier

        model: DomainClassifier = AudioClassifier(config)
    else:
        model = DomainClassifier(config)
    model.load_state_dict(load_file(str(weights)))
    return model.eval()


def load_extractor(name_or_path: str | Path | Extractor = "digits", device: str | torch.device = "cpu") -> Extractor:
    """An extractor by name ('digits', 'cifar10', 'spoken-digits', 'inception') or by path (.safetensors + .json,
    or .pth Inception)."""
    if isinstance(name_or_path, Extractor):
        return name_or_path.to(device).eval()
    with torch.random.fork_rng(devices=[]):  # building the layers draws initial weights: leave training's RNG be
        model = _build_extractor(str(name_or_path))
    return model.to(device).eval()


def _build_extractor(text: str) -> Extractor:
    """The extractor named TEXT (a built-in name or a weights path), on the CPU."""
    if text in BUILTIN:
        model: Extractor = _load_classifier(WEIGHTS_DIR / f"{text}.safetensors")
    elif text == "inception":
        from ganforge.metrics.inception import load_inception
        model = load_inception()
    else:
        path = Path(text).expanduser()
        if path.suffix in (".pth", ".pt"):
            from ganforge.metrics.inception import load_inception
            model = load_inception(path)
        elif path.suffix in (".safetensors", ".json") and path.with_suffix(".safetensors").exists():
            model = _load_classifier(path.with_suffix(".safetensors"))
        else:
            raise GanforgeError(
                f"unknown extractor {text!r}: use digits, cifar10, spoken-digits, inception, or a path to "
                ".safetensors/.pth weights"
            )
    return model


def default_extractor_for(channels: int, resolution: int) -> str:
    """The built-in extractor that matches the images: grey -> 'digits', RGB -> 'cifar10'."""
    if channels not in (1, 3):
        raise GanforgeError(f"images have {channels} channels; expected 1 (grey) or 3 (RGB)")
    del resolution  # both built-ins resize to 32 px; kept in the signature so larger built-ins can be chosen by size
    return "digits" if channels == 1 else "cifar10"
