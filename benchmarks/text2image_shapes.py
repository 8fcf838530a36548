"""Text-to-image benchmark on shapes-captions: train `text2image` single-threaded (CPU time measured), then score
its checkpoints with the shipped attribute classifier (colour, shape, relative position on seen and held-out
colour/shape pairs), the image-caption matcher (R-precision) and the Fréchet distance; write a JSON and a figure.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/text2image_shapes.py train --out runs-bench --steps 700
    OMP_NUM_THREADS=1 python benchmarks/text2image_shapes.py evaluate --run runs-bench/t2i-shapes
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuClock:
    """Records the process CPU time at every checkpoint the trainer writes (a trainer callback)."""

    def __init__(self, every: int, path: Path):
        self.every, self.path, self.start, self.marks = every, path, cpu_seconds(), {}

    def __call__(self, trainer) -> None:
        if trainer.step % self.every == 0:
            self.marks[trainer.step] = cpu_seconds() - self.start
            self.path.write_text(json.dumps(self.marks, indent=1))


def train(args) -> None:
    import ganforge

    torch.set_num_threads(1)
    run = Path(args.out) / args.name
    run.mkdir(parents=True, exist_ok=True)
    clock = CpuClock(args.every, run / "cpu_seconds.json")
    overrides = {"model.name": "text2image", "data.source": "shapes-captions", "data.limit": args.images,
                 "model.width": args.width, "train.batch_size": args.batch, "train.steps": args.steps,
                 "train.lr_g": args.lr_g, "train.lr_d": args.lr_d, "train.checkpoint_every": args.every,
                 "train.sample_every": args.every, "train.keep_checkpoints": 100, "train.log_every": 25,
                 "train.device": "cpu", "model.options": {"magp_weight": args.magp}, "out": args.out,
                 "name": args.name}
    ganforge.train(quiet=True, callbacks=[clock], **overrides)
    print(json.dumps(clock.marks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--out", default="runs-bench")
    t.add_argument("--name", default="t2i-shapes")
    t.add_argument("--steps", type=int, default=700)
    t.add_argument("--every", type=int, default=100)
    t.add_argument("--images", type=int, default=10000)
    t.add_argument("--width", type=int, default=16)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--lr-g", type=float, default=2e-4)
    t.add_argument("--lr-d", type=float, default=4e-4)
    t.add_argument("--magp", type=float, default=2.0)
    args = parser.parse_args()
    {"train": train}[args.command](args)


if __name__ == "__main__":
    main()
