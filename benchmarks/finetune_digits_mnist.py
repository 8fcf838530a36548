"""Fine-tuning example: a DCGAN trained on scikit-learn's 8x8 digits, fine-tuned on a small MNIST subset
(`train.init`), against the same model trained on that subset from scratch, and the projection figure of the
fine-tuned model (`ganforge project` on MNIST test digits it never saw).

Both MNIST runs use the same data, steps, seed and evaluation (Fréchet distance in ganforge's digits-classifier
features, the `fid` metric with `eval_extractor: digits`: not Inception FID), scored at step 0 and every
`--eval-every` steps. Writes docs/figures/finetune_digits_mnist.png, docs/figures/projection_mnist.png and .gif, and
prints the curve and the CPU seconds of every part.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/finetune_digits_mnist.py
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"


def common(args, out: Path) -> dict:
    return {"model.name": "dcgan", "data.resolution": 32, "model.width": args.width, "model.latent_dim": 64,
            "train.batch_size": 64, "train.seed": 0, "train.log_every": 50, "out": str(out)}


def train(overrides: dict, evaluate_first: bool) -> tuple[Path, float]:
    """Train a run (scored at step 0 too when `evaluate_first`); its folder and CPU seconds. Reuses a finished run."""
    from ganforge.api import resolve_config
    from ganforge.training.trainer import Trainer

    config = resolve_config(overrides=overrides)
    run_dir = Path(config.out) / config.name
    if (run_dir / "checkpoints" / "last.safetensors").exists():
        return run_dir, 0.0
    start = time.process_time()
    trainer = Trainer(config, run_dir, quiet=True)
    if evaluate_first:
        trainer.evaluate()
    trainer.fit()
    return run_dir, time.process_time() - start


def curve(run_dir: Path) -> list[tuple[int, float]]:
    with (run_dir / "eval.csv").open() as f:
        return [(int(row["step"]), float(row["eval/fid"])) for row in csv.DictReader(f)]


def plot(curves: dict[str, list[tuple[int, float]]], samples: dict[str, Path], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, axes = plt.subplots(1, 1 + len(samples), figsize=(4.2 + 3 * len(samples), 3.2),
                             gridspec_kw={"width_ratios": [1.4] + [1] * len(samples)})
    for label, points in curves.items():
        axes[0].plot(*zip(*points), marker="o", ms=3, label=label)
    axes[0].set_xlabel("training step on the MNIST subset")
    axes[0].set_ylabel("Fréchet distance (digits features)")
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)
    for ax, (label, grid) in zip(axes[1:], samples.items()):
        ax.imshow(Image.open(grid), cmap="gray", interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def projection_figure(run: Path, mnist: Path, n: int, steps: int) -> tuple[list[dict], float]:
    """Project `n` MNIST test digits into the fine-tuned model; a figure of targets, the best random start and the
    projections, and a GIF of the first search. Returns the losses and the CPU seconds."""
    import torchvision

    import ganforge
    from ganforge import media
    from ganforge.generation import fit_image
    from ganforge.projection import project

    start = time.process_time()
    model = ganforge.load(run)
    test = torchvision.datasets.MNIST(str(mnist), train=False, download=False)
    rows, targets, firsts, recons = [], [], [], []
    for index in range(n):
        target = fit_image(media.from_uint8(test.data[index][None, None]), 32)
        result = project(model, target, steps=steps, starts=8, seed=index)
        error = float((result.reconstruction - result.target).pow(2).mean())
        rows.append({"test_image": index, "loss_start": result.losses[0], "loss_end": result.losses[-1],
                     "random_latent_loss": result.random_loss, "pixel_mse": error})
        targets.append(result.target)
        firsts.append(result.frames[0])  # the best random start, before the search
        recons.append(result.reconstruction)
        if index == 0:
            media.save(result.animation(fps=12), FIGURES / "projection_mnist.gif", zoom=4, nrow=2)
    grid = torch.cat([torch.cat(targets), torch.cat(firsts), torch.cat(recons)])
    media.save(media.Images(grid), FIGURES / "projection_mnist.png", zoom=3, nrow=n)
    return rows, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    parser.add_argument("--limit", type=int, default=1000, help="MNIST training images used (the small target set)")
    parser.add_argument("--source-steps", type=int, default=500)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--eval-n", type=int, default=500)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--project", type=int, default=6, help="MNIST test digits projected for the figure")
    parser.add_argument("--project-steps", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "finetune")
    args = parser.parse_args()
    torch.set_num_threads(1)
    FIGURES.mkdir(parents=True, exist_ok=True)
    base = common(args, args.out)
    source, source_cpu = train(base | {"name": "digits-source", "data.source": "digits",
                                       "train.steps": args.source_steps}, False)
    target = base | {"data.source": "mnist", "data.root": str(args.mnist), "data.limit": args.limit,
                     "train.steps": args.steps, "train.eval_every": args.eval_every, "train.eval_n": args.eval_n,
                     "train.eval_extractor": "digits", "train.sample_every": args.steps,
                     "train.checkpoint_every": args.steps}
    scratch, scratch_cpu = train(target | {"name": "mnist-scratch"}, True)
    tuned, tuned_cpu = train(target | {"name": "mnist-finetuned", "train.init": str(source)}, True)
    curves = {"from scratch": curve(scratch), "fine-tuned from digits": curve(tuned)}
    samples = {f"from scratch, step {args.steps}": scratch / "samples" / f"step_{args.steps:06d}.png",
               f"fine-tuned, step {args.steps}": tuned / "samples" / f"step_{args.steps:06d}.png"}
    plot(curves, samples, FIGURES / "finetune_digits_mnist.png")
    projections, project_cpu = projection_figure(tuned, args.mnist, args.project, args.project_steps)
    summary = {"curves": curves, "cpu_s": {"source": round(source_cpu, 1), "scratch": round(scratch_cpu, 1),
                                           "finetuned": round(tuned_cpu, 1), "projection": round(project_cpu, 1)},
               "projections": projections, "settings": vars(args) | {"mnist": str(args.mnist), "out": str(args.out)}}
    print(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main()
