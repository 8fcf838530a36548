"""Train a ganforge domain classifier (feature extractor) on labelled images and save it as safetensors + JSON."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor, nn

from ganforge.errors import GanforgeError
from ganforge.metrics.extractors import DomainClassifier, classifier_config, file_hash
from ganforge.metrics.stats import atomic_write


def random_affine(images: Tensor, generator: torch.Generator, shift: float, scale: float, flip: bool) -> Tensor:
    """Per-sample random translation/scale (and horizontal flip) via one affine grid; padding is background (-1)."""
    n = len(images)
    s = 1 + (torch.rand(n, generator=generator) * 2 - 1) * scale
    sx = s * (torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if flip else 1.0)
    t = (torch.rand(n, 2, generator=generator) * 2 - 1) * shift
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = sx, s, t
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


def random_lowres(images: Tensor, generator: torch.Generator, p: float, sizes: tuple[int, int]) -> Tensor:
    """With probability p, downsample the batch to a random size and back: teaches the net upscaled small images."""
    if p <= 0 or torch.rand(1, generator=generator).item() >= p:
        return images
    size = int(torch.randint(sizes[0], sizes[1] + 1, (1,), generator=generator))
    full = images.shape[-1]
    small = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(small, size=(full, full), mode="bilinear", align_corners=False)


@torch.inference_mode()
def accuracy(model: DomainClassifier, images: Tensor, labels: Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of an extractor's logits on labelled images."""
    _, logits = model.extract(images, batch_size)
    return (logits.argmax(1) == labels).float().mean().item()


def fit_extractor(
    images: Tensor,
    labels: Tensor,
    classes: list[str],
    out: str | Path,
    name: str | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    holdout: tuple[Tensor, Tensor] | None = None,
    augment: dict | None = None,
    notes: dict | None = None,
    log=print,
) -> dict:
    """Train a classifier on images in [-1, 1] (N,C,H,W) and integer labels; write OUT.safetensors + OUT.json."""
    if len(images) != len(labels) or len(images) < 2:
        raise GanforgeError(f"need matching images and labels (got {len(images)} images, {len(labels)} labels)")
    if len(classes) < 2:
        raise GanforgeError(f"a feature extractor needs at least 2 classes; found {len(classes)}")
    out = Path(out).with_suffix(".safetensors")
    augment = {"shift": 0.1, "scale": 0.1, "flip": False, "lowres_p": 0.0, "lowres_sizes": (8, 16), **(augment or {})}
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    config = classifier_config(name or out.stem, classes, images.shape[1])
    model = DomainClassifier(config)
    images = model.preprocess(images)

    def forward(x: Tensor) -> Tensor:
        x = random_lowres(x, generator, augment["lowres_p"], augment["lowres_sizes"])
        return model.embed(random_affine(x, generator, augment["shift"], augment["scale"], augment["flip"]))[1]

    started = time.time()
    train_classifier(model, forward, images, labels, epochs, batch_size, lr, generator, log)
    report = {"n_train": len(images), "epochs": epochs, "seed": seed, "seconds": round(time.time() - started),
              "augment": {k: list(v) if isinstance(v, tuple) else v for k, v in augment.items()}, **(notes or {})}
    if holdout is not None:
        report["holdout_accuracy"] = round(accuracy(model, *holdout), 4)
        report["n_holdout"] = len(holdout[0])
    save_classifier(model, out, report)
    return report


def train_classifier(model: nn.Module, forward: Callable[[Tensor], Tensor], inputs: Tensor, labels: Tensor,
                     epochs: int, batch_size: int, lr: float, generator: torch.Generator, log=print) -> None:
    """AdamW with a one-cycle schedule and label smoothing over shuffled batches; `forward(batch)` gives the logits
    of a batch of `inputs` (with the caller's augmentation). Leaves the model in eval mode."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * math.ceil(len(inputs) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.2)
    started = time.process_time()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(inputs), generator=generator)
        total, correct = 0.0, 0
        for start in range(0, len(inputs), batch_size):
            index = order[start:start + batch_size]
            logits = forward(inputs[index])
            loss = F.cross_entropy(logits, labels[index], label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(index)
            correct += (logits.argmax(1) == labels[index]).sum().item()
        log(f"epoch {epoch + 1}/{epochs}: loss {total / len(inputs):.3f}, train acc {correct / len(inputs):.3f}, "
            f"{time.process_time() - started:.0f} CPU s")
    model.eval()


def save_classifier(model: DomainClassifier, out: Path, report: dict) -> None:
    """Write weights (safetensors) then config (JSON, with the training report), each atomically."""
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write(out, lambda tmp: save_file(state, tmp))
    config = {**model.config, "training": report}
    config.pop("weights_hash", None)
    atomic_write(out.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(config, indent=1) + "\n"))
    model.weights_hash = file_hash(out)

