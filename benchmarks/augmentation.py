"""GANs for data augmentation on MNIST, by the Classification Accuracy Score protocol (Ravuri & Vinyals 2019).

For each size n (real images per class) and seed: draw n real training images per class; train one fixed small
classifier on (a) the real images only, (b) real + synthetic images of a class-conditional GAN (ganforge `cgan`)
trained on those same real images, (c) synthetic images only; test each on the 10,000 MNIST test images. The GAN is
trained once plainly and once with DiffAugment (Zhao et al. 2020). Every classifier gets the same number of steps;
(b) draws half of every batch from the real images and half from the synthetic ones, so the few real images are not
swamped.

Each finished cell is appended to a JSON-lines file (a rerun skips it), with the CPU seconds it took, so the grid can
be run piecewise within a CPU budget; `--table` prints the markdown table (mean and standard deviation over seeds).

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/augmentation.py --sizes 10,50,100 --seeds 0,1,2
    python benchmarks/augmentation.py --table
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
# DiffAugment with the policy the paper uses for CIFAR-10, and with translation alone (run with --variants)
VARIANTS = {"cgan": {}, "cgan+diffaugment": {"diffaugment": "translation,cutout"},
            "cgan+diffaugment-translation": {"diffaugment": "translation"}}
DEFAULT_VARIANTS = ["cgan", "cgan+diffaugment"]


def load_mnist(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as float (N, 1, 28, 28) in [-1, 1] and labels (torchvision's layout under `root`, no download)."""
    import torchvision

    from ganforge.media import from_uint8

    data = torchvision.datasets.MNIST(str(root), train=train, download=False)
    return from_uint8(data.data.unsqueeze(1)), data.targets.long()


def subset(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Indices of `per_class` random images of each class."""
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels.numpy() == c), per_class, replace=False) for c in range(10)]
    return torch.from_numpy(np.concatenate(picks))


class Classifier(nn.Module):
    """The fixed small classifier: two conv layers and two linear ones (about 0.1M parameters)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def train_classifier(sets: list[tuple[torch.Tensor, torch.Tensor]], steps: int, seed: int,
                     batch: int = 64) -> nn.Module:
    """Adam for `steps` steps; each batch takes an equal share from each of `sets` (images, labels)."""
    torch.manual_seed(seed)
    model = Classifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    share = batch // len(sets)
    for _ in range(steps):
        parts = [(x[i], y[i]) for x, y in sets for i in [torch.randint(0, len(x), (share,))]]
        images, labels = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    hits = sum(int((model(images[i:i + 1000]).argmax(1) == labels[i:i + 1000]).sum())
               for i in range(0, len(images), 1000))
    return hits / len(images)


def train_gan(images: torch.Tensor, labels: torch.Tensor, variant: str, steps: int, width: int, seed: int,
              out: Path, n_critic: int = 2, batch: int = 32) -> Path:
    """A ganforge cgan (its preset: hinge loss, spectral norm, projection D; here `n_critic` D steps per G step)
    on the real subset at 32 px."""
    from ganforge.api import resolve_config
    from ganforge.data.sources import ImageSet
    from ganforge.media import to_uint8
    from ganforge.training.trainer import Trainer

    name = out.name
    overrides = {"model.name": "cgan", "data.source": "mnist", "data.resolution": 32, "model.width": width,
                 "model.latent_dim": 64, "train.steps": steps, "train.batch_size": batch, "train.seed": seed,
                 "train.n_critic": n_critic,
                 "train.sample_every": steps, "train.checkpoint_every": steps, "train.log_every": 50,
                 "out": str(out.parent), "name": name, "model.options": VARIANTS[variant]}
    config = resolve_config(overrides=overrides)
    big = F.interpolate(images, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
    data = ImageSet(to_uint8(big.clamp(-1, 1)), labels, [str(c) for c in range(10)], name=f"mnist subset {name}")
    if (out / "checkpoints" / "last.safetensors").exists():
        return out
    return Trainer(config, out, quiet=True, data=data).fit()


def synthetic(run: Path, per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_class` samples of every class from the GAN (EMA generator), back at 28 px."""
    import ganforge

    model = ganforge.load(run)
    images = torch.cat([model.sample(per_class, seed=seed * 100 + c, labels=c).tensor for c in range(10)])
    images = F.interpolate(images, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    return images.clamp(-1, 1), torch.arange(10).repeat_interleave(per_class)


def run_grid(args) -> None:
    torch.set_num_threads(1)
    train_x, train_y = load_mnist(args.data, True)
    test_x, test_y = load_mnist(args.data, False)
    results = Path(args.results)
    done = {json.dumps(r["key"]) for r in read(results)}
    for seed in args.seeds:  # seed by seed, so a grid cut short still covers every size
        for size in args.sizes:
            picked = subset(train_y, size, seed)
            real = (train_x[picked], train_y[picked])
            key = {"size": size, "seed": seed, "setting": "real only"}
            if json.dumps(key) not in done:
                start = time.process_time()
                acc = accuracy(train_classifier([real], args.clf_steps, seed), test_x, test_y)
                write(results, key, acc, time.process_time() - start, {})
            for variant in args.variants:
                keys = [{"size": size, "seed": seed, "setting": f"real + {variant}"},
                        {"size": size, "seed": seed, "setting": f"{variant} only"}]
                if all(json.dumps(k) in done for k in keys):
                    continue
                start = time.process_time()
                run = train_gan(*real, variant, args.gan_steps, args.width, seed,
                                Path(args.out) / f"{variant}-n{size}-s{seed}", args.n_critic, args.batch)
                fake = synthetic(run, args.synthetic, seed)
                gan_seconds = time.process_time() - start
                extra = {"gan_steps": args.gan_steps, "gan_cpu_s": round(gan_seconds, 1), "width": args.width,
                         "n_critic": args.n_critic, "gan_batch": args.batch,
                         "synthetic_per_class": args.synthetic}
                for key, sets in zip(keys, ([real, fake], [fake])):
                    start = time.process_time()
                    acc = accuracy(train_classifier(sets, args.clf_steps, seed), test_x, test_y)
                    write(results, key, acc, time.process_time() - start, extra)
                print(f"n={size} seed={seed} {variant}: GAN {gan_seconds:.0f} CPU s", flush=True)


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def write(path: Path, key: dict, acc: float, cpu: float, extra: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps({"key": key, "accuracy": acc, "classifier_cpu_s": round(cpu, 1)} | extra) + "\n")
    print(f"{key}: test accuracy {acc:.4f} ({cpu:.0f} CPU s)", flush=True)


def table(path: Path) -> str:
    rows = read(path)
    sizes = sorted({r["key"]["size"] for r in rows})
    settings = list(dict.fromkeys(r["key"]["setting"] for r in rows))
    lines = ["| training data of the classifier | " + " | ".join(f"{n} real / class" for n in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for setting in settings:
        cells = []
        for n in sizes:
            accs = [100 * r["accuracy"] for r in rows if r["key"] == {**r["key"], "size": n, "setting": setting}]
            if not accs:
                cells.append("")
            elif len(accs) == 1:
                cells.append(f"{accs[0]:.1f} (1 seed)")
            else:
                cells.append(f"{statistics.mean(accs):.1f} ± {statistics.stdev(accs):.1f} ({len(accs)} seeds)")
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    gan = [r["gan_cpu_s"] for r in rows if "gan_cpu_s" in r]
    clf = [r["classifier_cpu_s"] for r in rows]
    lines.append(f"\nCPU: {sum(gan) / 2 + sum(clf):.0f} s in all (GAN training and sampling: {sum(gan) / 2:.0f} s "
                 f"over {len(gan) // 2} runs; classifiers: {sum(clf):.0f} s over {len(clf)})")
    return "\n".join(lines)


def figure(out: Path, size: int, seed: int, variants: list[str], path: Path, steps: int) -> None:
    """The final sample grids (classes 0-9 in turn) of each variant's GAN for one size and seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, axes = plt.subplots(1, len(variants), figsize=(3.6 * len(variants), 3.9))
    for ax, variant in zip(np.atleast_1d(axes), variants):
        ax.imshow(Image.open(out / f"{variant}-n{size}-s{seed}" / "samples" / f"step_{steps:06d}.png"), cmap="gray")
        ax.set_title(f"{variant}, {size} real / class, seed {seed}", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    parser.add_argument("--sizes", type=lambda s: [int(v) for v in s.split(",")], default=[10, 50, 100])
    parser.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--variants", type=lambda s: s.split(","), default=DEFAULT_VARIANTS)
    parser.add_argument("--gan-steps", type=int, default=400)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--n-critic", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32, help="GAN batch size")
    parser.add_argument("--clf-steps", type=int, default=300)
    parser.add_argument("--synthetic", type=int, default=500, help="synthetic images per class")
    parser.add_argument("--out", default=str(ROOT / "runs" / "augmentation"))
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "augmentation.jsonl"))
    parser.add_argument("--table", action="store_true", help="print the table of the results so far and stop")
    parser.add_argument("--figure", type=Path, help="write the variants' sample grids for the first size and seed "
                        "(runs already trained) to this PNG and stop")
    args = parser.parse_args()
    if args.figure:
        figure(Path(args.out), args.sizes[0], args.seeds[0], args.variants, args.figure, args.gan_steps)
    elif args.table:
        print(table(Path(args.results)))
    else:
        run_grid(args)


if __name__ == "__main__":
    main()
