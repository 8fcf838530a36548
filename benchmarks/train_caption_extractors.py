"""Train the shapes-captions measuring instruments shipped in ganforge/weights/: the attribute classifier
(shapes-attributes.*) and the image-caption matcher (shapes-matcher.*), on renders of every colour/shape pair.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/train_caption_extractors.py
"""

from __future__ import annotations

import argparse
import json
import resource

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ganforge.data.shapes import COLOURS, RELATIONS, SHAPES, SIZES, make_scenes, render_scenes
from ganforge.media import from_uint8
from ganforge.metrics.captions import (HEADS, ShapesClassifier, ShapesMatcher, attribute_accuracy, read_scenes,
                                       scene_targets)
from ganforge.metrics.extractors import WEIGHTS_DIR

WORDS = [*SIZES, *COLOURS, *SHAPES, "a", *sorted({w for r in RELATIONS for w in r.split()})]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def shift(images: torch.Tensor, generator: torch.Generator, pixels: int = 1) -> torch.Tensor:
    """Random translations by up to `pixels` (and slight brightness changes): generated images are not exact renders."""
    n = images.shape[0]
    dx, dy = (torch.randint(-pixels, pixels + 1, (2,), generator=generator)).tolist()
    images = torch.roll(images, (dy, dx), (2, 3))
    gain = 1 + 0.1 * (torch.rand(n, 1, 1, 1, generator=generator) - 0.5)
    return (images * gain).clamp(-1, 1)


def train_classifier(images, scenes, epochs, seed) -> ShapesClassifier:
    torch.manual_seed(seed)
    config = {"architecture": "shapes-classifier", "name": "shapes-attributes", "resolution": 32,
              "widths": [32, 64, 96], "feature_dim": 256}
    model = ShapesClassifier(config)
    targets = scene_targets(scenes)
    optimiser = torch.optim.Adam(model.parameters(), 2e-3)
    generator = torch.Generator().manual_seed(seed)
    steps = epochs * (len(images) // 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 2e-3, total_steps=steps)
    model.train()
    for step in range(steps):
        index = torch.randint(0, len(images), (64,), generator=generator)
        _, logits = model.embed(shift(images[index], generator))
        loss = sum(F.cross_entropy(part, targets[name][index], ignore_index=-1)
                   for name, part in ShapesClassifier.split(logits).items())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    return model.eval()


def train_matcher(images, captions, owner, epochs, seed) -> ShapesMatcher:
    torch.manual_seed(seed)
    config = {"name": "shapes-matcher", "resolution": 32, "widths": [32, 64, 96], "dim": 128,
              "vocabulary": WORDS, "max_length": 12}
    model = ShapesMatcher(config)
    tokens = model.vocabulary.encode(captions, config["max_length"])[0]
    optimiser = torch.optim.Adam(model.parameters(), 2e-3)
    generator = torch.Generator().manual_seed(seed)
    steps = epochs * (len(images) // 128)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 2e-3, total_steps=steps)
    model.train()
    for step in range(steps):
        pick = torch.randint(0, len(captions), (128,), generator=generator)
        image = F.normalize(model.image(shift(images[owner[pick]], generator)), dim=1)
        text = F.normalize(model.text(tokens[pick]), dim=1)
        logits = image @ text.T / 0.07
        same = owner[pick].unsqueeze(0) == owner[pick].unsqueeze(1)  # the same picture's other wordings
        labels = torch.arange(128)
        logits = logits.masked_fill(same & ~torch.eye(128, dtype=torch.bool), -1e4)
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    return model.eval()


def save(model, config: dict, report: dict, name: str) -> None:
    path = WEIGHTS_DIR / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    config = {k: v for k, v in config.items() if k != "weights_hash"} | {"training": report}
    path.with_suffix(".json").write_text(json.dumps(config, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = cpu_seconds()
    scenes = make_scenes(args.images, args.seed, "all")
    images = from_uint8(render_scenes(scenes, 32, args.seed + 1))
    test_scenes = make_scenes(2000, args.seed + 50, "all")
    test_images = from_uint8(render_scenes(test_scenes, 32, args.seed + 51))
    classifier = train_classifier(images, scenes, args.epochs, args.seed)
    scores = attribute_accuracy(read_scenes(classifier, test_images), test_scenes)
    report = {"n_train": args.images, "epochs": args.epochs, "seed": args.seed, "split": "all pairs",
              "test_accuracy": {k: round(v, 4) for k, v in scores.items()},
              "cpu_seconds": round(cpu_seconds() - start)}
    print("classifier", report)
    save(classifier, classifier.config, report, "shapes-attributes")
    start = cpu_seconds()
    captions, owner = [], []
    for index, scene in enumerate(scenes):
        captions += scene.captions()
        owner += [index] * len(scene.captions())
    matcher = train_matcher(images, captions, torch.tensor(owner), args.epochs, args.seed)
    from ganforge.metrics.captions import r_precision

    test_captions = [s.captions()[0] for s in test_scenes]
    report = {"n_train": args.images, "epochs": args.epochs, "seed": args.seed,
              "test_r_precision": round(r_precision(matcher, test_images, test_captions), 4),
              "cpu_seconds": round(cpu_seconds() - start)}
    print("matcher", report)
    save(matcher, matcher.config, report, "shapes-matcher")
    print(HEADS)


if __name__ == "__main__":
    main()
