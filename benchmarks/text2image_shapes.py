"""Text-to-image benchmark on shapes-captions: train `text2image` single-threaded (CPU time measured), then score
its checkpoints with the shipped attribute classifier (colour, shape, relative position on seen and held-out
colour/shape pairs), the image-caption matcher (R-precision) and the Fréchet distance; write a JSON and a figure.

    OMP_NUM_THREADS=1 python benchmarks/text2image_shapes.py train --out runs-bench --steps 2500 --every 250
    OMP_NUM_THREADS=1 python benchmarks/text2image_shapes.py evaluate --run runs-bench/t2i-shapes --n 600

`train --preset paper` trains DF-GAN's recipe instead; `--opt KEY=VALUE` / `--set KEY=VALUE` change one option or
setting (pilots).
"""

from __future__ import annotations

import argparse
import json
import resource
from pathlib import Path

import torch
import yaml


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuClock:
    """Records the process CPU time at every checkpoint the trainer writes (a trainer callback)."""

    def __init__(self, every: int, path: Path):
        self.every, self.path, self.marks = every, path, json.loads(path.read_text()) if path.exists() else {}
        self.start = cpu_seconds() - max(self.marks.values(), default=0.0)  # a resumed run continues the count

    def __call__(self, trainer) -> None:
        if trainer.step % self.every == 0:
            self.marks[str(trainer.step)] = cpu_seconds() - self.start
            self.path.write_text(json.dumps(self.marks, indent=1))


def train(args) -> None:
    import ganforge

    torch.set_num_threads(1)
    run = Path(args.out) / args.name
    run.mkdir(parents=True, exist_ok=True)
    clock = CpuClock(args.every, run / "cpu_seconds.json")
    overrides = {"model.name": "text2image", "data.source": "shapes-captions", "data.limit": args.images,
                 "model.width": args.width, "train.batch_size": args.batch, "train.steps": args.steps,
                 "train.checkpoint_every": args.every,
                 "train.sample_every": args.every, "train.keep_checkpoints": 100, "train.log_every": 25,
                 "train.device": "cpu", "model.options": {k: yaml.safe_load(v) for k, v in args.opt}, "out": args.out,
                 "name": args.name, "model.preset": args.preset} | {k: yaml.safe_load(v) for k, v in args.set}
    if args.resume:
        ganforge.train(resume=run, quiet=True, callbacks=[clock], **{"train.steps": args.steps,
                       "train.checkpoint_every": args.every, "train.sample_every": args.every})
    else:
        ganforge.train(quiet=True, callbacks=[clock], **overrides)
    print(json.dumps(clock.marks))


def references(n: int, seed: int, classifier, matcher) -> dict:
    """The same scores for real renders: with their own captions (the instruments' ceiling) and with the captions
    of other scenes (chance: right-looking pictures that ignore the caption)."""
    import numpy as np

    from ganforge.media import from_uint8
    from ganforge.metrics.captions import attribute_accuracy, evaluation_captions, r_precision, read_scenes
    from ganforge.data.shapes import render_scenes

    out = {}
    for split in ("train", "held-out"):
        scenes, captions = evaluation_captions(n, split, seed + (0 if split == "train" else 1))
        images = from_uint8(render_scenes(scenes, 32, seed + 11))
        order = np.random.default_rng(seed).permutation(n)
        shuffled = [scenes[i] for i in order]
        predicted = read_scenes(classifier, images)
        key = "seen" if split == "train" else "held_out"
        out[f"real_{key}"] = attribute_accuracy(predicted, scenes) | {
            "r_precision": r_precision(matcher, images, captions, seed=seed)}
        out[f"chance_{key}"] = attribute_accuracy(predicted, shuffled) | {"r_precision": 0.01}
    return out


def evaluate(args) -> None:
    import ganforge
    from ganforge import media
    from ganforge.metrics.captions import evaluate_captioned, load_classifier, load_matcher

    torch.set_num_threads(1)
    run = Path(args.run)
    clock = json.loads((run / "cpu_seconds.json").read_text())
    classifier, matcher = load_classifier(), load_matcher()
    result = {"references": references(args.n, args.seed, classifier, matcher), "checkpoints": []}
    for step in sorted(int(k) for k in clock):
        name = f"step_{step:06d}"
        if not (run / "checkpoints" / f"{name}.safetensors").exists():
            continue
        model = ganforge.load(run, name)
        scores = evaluate_captioned(model, args.n, args.seed, classifier, matcher)
        result["checkpoints"].append({"step": step, "cpu_minutes": round(clock[str(step)] / 60, 2)} | scores)
        print(json.dumps(result["checkpoints"][-1]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "text2image_shapes.json").write_text(json.dumps(result, indent=1) + "\n")
    figure(result, out / "text2image_shapes.png")
    model = ganforge.load(run)
    captions = ["a red circle left of a blue square", "a small green triangle above a large white cross",
                "a yellow cross below a purple circle", "a large blue square",
                "a red triangle right of a green square", "a green circle above a yellow square"]
    inputs = model.family.caption_inputs(model.sample_inputs(8 * len(captions), args.seed),
                                         [c for c in captions for _ in range(8)])
    media.save(model.generate(inputs), out / "text2image_samples.png", zoom=3, nrow=8)
    (out / "text2image_samples.txt").write_text("rows, top to bottom (the last two name held-out pairs):\n"
                                                + "\n".join(captions) + "\n")


def figure(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["checkpoints"]
    minutes = [r["cpu_minutes"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), sharey=True)
    for ax, key in zip(axes, ("colour", "shape", "position")):
        for split, style in (("seen", "-o"), ("held_out", "--s")):
            ax.plot(minutes, [r[split][key] for r in rows], style, label=f"generated, {split.replace('_', '-')}")
            ax.axhline(result["references"][f"chance_{split}"][key], color="grey", ls=":" if split == "seen" else "-.",
                       lw=1, label=f"chance, {split.replace('_', '-')}")
        ax.axhline(0.7, color="red", lw=0.8, alpha=0.5)
        ax.set_title(f"{key} accuracy")
        ax.set_xlabel("CPU minutes (1 thread)")
    axes[0].set_ylabel("accuracy (attribute classifier)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--out", default="runs-bench")
    t.add_argument("--name", default="t2i-shapes")
    t.add_argument("--steps", type=int, default=2500)  # issue 16: the 3-seed mean meets the target at 2500
    t.add_argument("--every", type=int, default=100)
    t.add_argument("--images", type=int, default=10000)
    t.add_argument("--width", type=int, default=16)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--preset", default="default", help="the family's recipe: default (tuned here) or paper (DF-GAN's)")
    t.add_argument("--opt", action="append", default=[], type=lambda text: tuple(text.split("=", 1)),
                   metavar="KEY=VALUE", help="a text2image option (model.options), repeatable")
    t.add_argument("--set", action="append", default=[], type=lambda text: tuple(text.split("=", 1)),
                   metavar="KEY=VALUE", help="another config override (e.g. model.d_norm=spectral), repeatable")
    t.add_argument("--resume", action="store_true", help="continue the run to --steps (CPU time keeps counting)")
    e = sub.add_parser("evaluate")
    e.add_argument("--run", default="runs-bench/t2i-shapes")
    e.add_argument("--out", default="docs/figures")
    e.add_argument("--n", type=int, default=500)
    e.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    {"train": train, "evaluate": evaluate}[args.command](args)


if __name__ == "__main__":
    main()
