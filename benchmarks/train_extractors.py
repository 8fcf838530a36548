"""Train the built-in feature extractors shipped in ganforge/weights/ (digits, cifar10) from offline data.

    python benchmarks/train_extractors.py [digits] [cifar10] [--data ../shared/data] [--epochs N]

digits:  MNIST train (torchvision layout under DATA/mnist) plus sklearn digits (index % 3 != 0), upscaled 8 -> 32 px;
         held out: sklearn digits with index % 3 == 0 (at 16 and 32 px) and 2,000 MNIST test images.
cifar10: the CIFAR-10 test split (DATA/cifar10-test-jpg.tar); held out: every 5th image of each class (2,000).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.metrics.extractors import WEIGHTS_DIR, load_extractor
from ganforge.metrics.fit import accuracy, fit_extractor
from ganforge.metrics.images import load_images

DIGIT_CLASSES = [str(i) for i in range(10)]


def sklearn_digits(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's 1,797 8x8 digits as [-1, 1] images upscaled (bilinear) to size x size, and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 8 - 1
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return images, torch.tensor(digits.target)


def mnist(data: Path, train: bool, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST from the offline torchvision layout as [-1, 1] 32 px images."""
    from torchvision.datasets import MNIST

    dataset = MNIST(str(data / "mnist"), train=train, download=False)
    images = dataset.data[:limit].float().unsqueeze(1) / 127.5 - 1
    images = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False)
    return images, dataset.targets[:limit].clone()


def train_digits(data: Path, epochs: int) -> dict:
    mnist_x, mnist_y = mnist(data, train=True, limit=30000)
    digits_x, digits_y = sklearn_digits(32)
    train = torch.arange(len(digits_x)) % 3 != 0
    # sklearn digits are few (1,198 train): repeat them so they weigh about a sixth of each epoch
    x = torch.cat([mnist_x] + [digits_x[train]] * 5)
    y = torch.cat([mnist_y] + [digits_y[train]] * 5)
    test_x, test_y = mnist(data, train=False, limit=2000)
    report = fit_extractor(
        x, y, DIGIT_CLASSES, WEIGHTS_DIR / "digits", epochs=epochs, holdout=(test_x, test_y),
        augment={"shift": 0.12, "scale": 0.15, "lowres_p": 0.3, "lowres_sizes": (8, 16)},
        notes={"data": "MNIST train[:30000] + sklearn digits (index % 3 != 0) x5 at 32 px",
               "holdout": "MNIST test[:2000]; sklearn digits index % 3 == 0 reported separately"},
    )
    model = load_extractor("digits")
    held = ~train
    for size in (16, 32):
        images, labels = sklearn_digits(size)
        report[f"sklearn_digits_{size}px_holdout_accuracy"] = round(accuracy(model, images[held], labels[held]), 4)
    return report


def train_cifar10(data: Path, epochs: int) -> dict:
    loaded = load_images(data / "cifar10-test-jpg.tar")
    index = torch.arange(len(loaded.images))
    held = index % 5 == 0  # files are sorted by class then number, so this takes every 5th image of each class
    return fit_extractor(
        loaded.images[~held], loaded.labels[~held], loaded.classes, WEIGHTS_DIR / "cifar10", epochs=epochs,
        holdout=(loaded.images[held], loaded.labels[held]), augment={"shift": 0.12, "scale": 0.1, "flip": True},
        notes={"data": "CIFAR-10 test split (JPEG), 8,000 images (index % 5 != 0)",
               "holdout": "CIFAR-10 test split, index % 5 == 0 (2,000 images)"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", default=["digits", "cifar10"])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    np.random.seed(0)
    for name in args.which:
        train = {"digits": train_digits, "cifar10": train_cifar10}[name]
        report = train(args.data, args.epochs or {"digits": 4, "cifar10": 30}[name])
        _record_extra(name, report)
        print(name, json.dumps(report, indent=1))


def _record_extra(name: str, report: dict) -> None:
    """Store accuracies measured after saving (sklearn digits) in the extractor's JSON config."""
    path = WEIGHTS_DIR / f"{name}.json"
    config = json.loads(path.read_text())
    config["training"] = report
    path.write_text(json.dumps(config, indent=1) + "\n")


if __name__ == "__main__":
    main()
