"""Text-to-image metrics on shapes-captions: attribute accuracy (colour, shape, relative position) of generated
images read by a classifier trained on the synthetic scenes, on seen and on held-out colour/shape pairs;
R-precision with a trained image-caption matcher; the Fréchet distance in the classifier's feature space.

Weights ship in ganforge/weights/shapes-attributes.* and shapes-matcher.* (trained by
benchmarks/train_caption_extractors.py on rendered scenes of every colour/shape pair, held-out ones included:
they are measuring instruments, not the model under test)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn

from ganforge.data.captions import Vocabulary
from ganforge.data.shapes import COLOURS, SHAPES, SIZES, Scene, make_scenes, parse_caption, render_scenes
from ganforge.errors import GanforgeError
from ganforge.media import from_uint8
from ganforge.metrics.extractors import WEIGHTS_DIR, Extractor, file_hash
from ganforge.metrics.fid import frechet_distance

COLOUR_NAMES, SHAPE_NAMES = list(COLOURS), list(SHAPES)
# head -> number of classes; the canonical scene: first thing left of (or above) the second
HEADS = {"count": 2, "colour1": 6, "shape1": 4, "size1": 2, "colour2": 6, "shape2": 4, "size2": 2, "axis": 2}
PAIRED = ("colour2", "shape2", "size2", "axis")  # heads only defined for two-thing scenes


def scene_targets(scenes: list[Scene]) -> dict[str, Tensor]:
    """Class indices of every head for each scene (canonical form; -1 where undefined: unsaid size, no second)."""
    rows = {name: [] for name in HEADS}
    for scene in scenes:
        s = scene.canonical()
        rows["count"].append(0 if s.second is None else 1)
        for index, thing in ((1, s.first), (2, s.second)):
            rows[f"colour{index}"].append(COLOUR_NAMES.index(thing.colour) if thing else -1)
            rows[f"shape{index}"].append(SHAPE_NAMES.index(thing.shape) if thing else -1)
            rows[f"size{index}"].append(SIZES.index(thing.size) if thing and thing.size else -1)
        rows["axis"].append(-1 if s.second is None else int(s.relation == "above"))
    return {name: torch.tensor(values) for name, values in rows.items()}


def _trunk(channels: int, widths: list[int]) -> nn.Sequential:
    layers, cin = [], channels
    for width in widths:
        layers += [nn.Conv2d(cin, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2)]
        cin = width
    return nn.Sequential(*layers, nn.Flatten())  # keeps the 4x4 layout: positions matter


class ShapesClassifier(Extractor):
    """Reads a shapes-captions picture: count, colour/shape/size of each thing (left or top first), the axis."""

    def __init__(self, config: dict):
        super().__init__()
        self.config, self.name = config, config["name"]
        self.weights_hash = config.get("weights_hash", "untrained")
        self.resolution, self.channels = config["resolution"], 3
        self.num_features, self.classes = config["feature_dim"], [f"{h}:{i}" for h, n in HEADS.items()
                                                                  for i in range(n)]
        self.resize_filter = f"bilinear-antialias@{self.resolution}"
        self.body = _trunk(3, config["widths"])
        side = self.resolution // 2 ** len(config["widths"])
        self.penultimate = nn.Sequential(nn.Linear(config["widths"][-1] * side * side, self.num_features),
                                         nn.ReLU(inplace=True))
        self.head = nn.Linear(self.num_features, sum(HEADS.values()))

    def embed(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.penultimate(self.body(x))
        return features, self.head(features)

    @staticmethod
    def split(logits: Tensor) -> dict[str, Tensor]:
        """Concatenated logits -> {head: logits}."""
        return dict(zip(HEADS, logits.split(list(HEADS.values()), 1)))


class TextVectors(nn.Module):
    def __init__(self, vocabulary: int, dim: int):
        super().__init__()
        self.embed = nn.Embedding(vocabulary, dim, padding_idx=0)
        self.rnn = nn.GRU(dim, dim, batch_first=True, bidirectional=True)
        self.project = nn.Linear(2 * dim, dim)

    def forward(self, tokens: Tensor) -> Tensor:
        lengths = (tokens != 0).sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(tokens), lengths, batch_first=True, enforce_sorted=False)
        _, last = self.rnn(packed)
        return self.project(torch.cat([last[0], last[1]], 1))


class ShapesMatcher(nn.Module):
    """Image and caption encoders into one space (cosine similarity), trained contrastively (CLIP-style)."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = config
        self.vocabulary = Vocabulary(config["vocabulary"])
        self.length = config["max_length"]
        widths, dim, res = config["widths"], config["dim"], config["resolution"]
        self.image = nn.Sequential(_trunk(3, widths), nn.Linear(widths[-1] * (res // 2 ** len(widths)) ** 2, dim))
        self.text = TextVectors(len(self.vocabulary), dim)

    def image_vectors(self, images: Tensor) -> Tensor:
        if images.shape[-1] != self.config["resolution"]:
            size = (self.config["resolution"],) * 2
            images = F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)
        return F.normalize(self.image(images), dim=1)

    def text_vectors(self, captions: list[str]) -> Tensor:
        return F.normalize(self.text(self.vocabulary.encode(captions, self.length)[0]), dim=1)


def _load(kind: type, name: str, path: str | Path | None):
    """An instrument: the shipped `name` weights (ganforge/weights/NAME.safetensors + .json) or those at `path`."""
    weights = Path(path) if path else WEIGHTS_DIR / f"{name}.safetensors"
    if not weights.exists() or not weights.with_suffix(".json").exists():
        raise GanforgeError(f"{weights} (or its .json) is missing: run benchmarks/train_caption_extractors.py")
    config = json.loads(weights.with_suffix(".json").read_text())
    config["weights_hash"] = file_hash(weights)
    model = kind(config)
    model.load_state_dict(load_file(str(weights)))
    return model.eval()


def load_classifier(path: str | Path | None = None) -> ShapesClassifier:
    """The shipped shapes-captions attribute classifier (or the one at `path`, .safetensors + .json)."""
    return _load(ShapesClassifier, "shapes-attributes", path)


def load_matcher(path: str | Path | None = None) -> ShapesMatcher:
    """The shipped shapes-captions image-caption matcher (or the one at `path`)."""
    return _load(ShapesMatcher, "shapes-matcher", path)


@torch.inference_mode()
def read_scenes(classifier: ShapesClassifier, images: Tensor, batch_size: int = 500) -> dict[str, Tensor]:
    """The classifier's predicted class of every head for images in [-1, 1]."""
    _, logits = classifier.extract(images, batch_size)
    return {name: part.argmax(1) for name, part in ShapesClassifier.split(logits).items()}


def _matches(predicted: list[list[str]], wanted: list[list[str]]) -> float:
    """Share of the wanted attributes found among the predicted ones (as multisets), over all things."""
    found = total = 0
    for have, want in zip(predicted, wanted):
        pool = list(have)
        for item in want:
            total += 1
            if item in pool:
                pool.remove(item)
                found += 1
    return found / max(total, 1)


def attribute_accuracy(predicted: dict[str, Tensor], scenes: list[Scene]) -> dict[str, float]:
    """Colour and shape accuracy (each thing a caption names found in the picture, order aside) and position
    accuracy (two-thing captions: the right axis with each coloured shape on its side), from `read_scenes`."""
    target = scene_targets(scenes)
    two_pred = predicted["count"] == 1
    names: dict[str, list[list[str]]] = {"colour": [], "shape": [], "colour_want": [], "shape_want": []}
    for i, scene in enumerate(scenes):
        slots = (1, 2) if two_pred[i] else (1,)
        names["colour"].append([int(predicted[f"colour{k}"][i]) for k in slots])
        names["shape"].append([int(predicted[f"shape{k}"][i]) for k in slots])
        names["colour_want"].append([COLOUR_NAMES.index(t.colour) for t in scene.things])
        names["shape_want"].append([SHAPE_NAMES.index(t.shape) for t in scene.things])
    result = {"colour": _matches(names["colour"], names["colour_want"]),
              "shape": _matches(names["shape"], names["shape_want"])}
    pairs = target["count"] == 1
    if pairs.any():
        right = two_pred & (predicted["axis"] == target["axis"])
        for key in ("colour1", "shape1", "colour2", "shape2"):
            right &= predicted[key] == target[key]
        result["position"] = float(right[pairs].float().mean())
    result["count"] = float((predicted["count"] == target["count"]).float().mean())
    return result


@torch.inference_mode()
def r_precision(matcher: ShapesMatcher, images: Tensor, captions: list[str], candidates: int = 100,
                seed: int = 0) -> float:
    """AttnGAN's R-precision (R = 1): the share of images whose own caption ranks first among itself and
    `candidates` - 1 captions of other scenes drawn from `captions`, by the matcher's cosine similarity."""
    rng = np.random.default_rng(seed)
    scenes = [parse_caption(c) for c in captions]
    keys = [s.canonical() if s else c for s, c in zip(scenes, captions)]
    text = matcher.text_vectors(captions)
    image = torch.cat([matcher.image_vectors(images[i:i + 500]) for i in range(0, len(images), 500)])
    hits = 0
    for i in range(len(images)):
        others = [j for j in rng.choice(len(captions), size=min(len(captions), 4 * candidates), replace=False)
                  if keys[j] != keys[i]][:candidates - 1]
        scores = image[i] @ text[[i, *others]].T
        hits += int(scores.argmax() == 0)
    return hits / len(images)


def evaluation_captions(n: int, split: str, seed: int) -> tuple[list[Scene], list[str]]:
    """`n` scenes of a split (train: only seen colour/shape pairs; held-out: each names an unseen pair) and one
    caption of each, the wording drawn like the training captions'."""
    scenes = make_scenes(n, seed, split)
    rng = np.random.default_rng(seed + 7)
    captions = [s.captions()[int(rng.integers(len(s.captions())))] for s in scenes]
    return scenes, captions


@torch.inference_mode()
def evaluate_captioned(model, n: int = 500, seed: int = 0, classifier: ShapesClassifier | None = None,
                       matcher: ShapesMatcher | None = None) -> dict:
    """Scores of a trained text-to-image model (a `ganforge.load` GAN) on shapes-captions: for seen and held-out
    captions, attribute accuracy, R-precision, and (seen) the Fréchet distance to real renders of the same scenes."""
    classifier, matcher = classifier or load_classifier(), matcher or load_matcher()
    resolution = model.family.info.resolution
    result: dict = {"n": n, "seed": seed, "classifier": classifier.weights_hash,
                    "matcher": matcher.config["weights_hash"]}
    for split in ("train", "held-out"):
        scenes, captions = evaluation_captions(n, split, seed + (0 if split == "train" else 1))
        inputs = model.family.caption_inputs(model.sample_inputs(n, seed), captions)
        fake = model.generate(inputs).tensor
        scores = attribute_accuracy(read_scenes(classifier, fake), scenes)
        scores["r_precision"] = r_precision(matcher, fake, captions, seed=seed)
        real = from_uint8(render_scenes(scenes, resolution, seed + 11))
        if split == "train":
            fake_features, _ = classifier.extract(fake)
            real_features, _ = classifier.extract(real)
            scores["frechet"] = frechet_distance(fake_features.double().mean(0), torch.cov(fake_features.double().T),
                                                 real_features.double().mean(0), torch.cov(real_features.double().T))
        result["seen" if split == "train" else "held_out"] = scores
    return result
