"""Where a small CPU budget goes in ProGAN (issue 20): steps per growth phase, CPU seconds per step at each depth
and batch size, the gradient penalty's share, and the EMA's effective decay at the end of a short run.

Settings are the families table's (benchmarks/families_digits.py: digits, 16 px, width 32, latent 64). Step costs
are measured interleaved in one process (blocks of steps, round robin over the variants), so the load from other
processes falls on every variant alike; they are process CPU seconds of one thread.

    OMP_NUM_THREADS=1 python benchmarks/progan_budget.py --steps 1600 --blocks 3 --block 3
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ganforge.api import resolve_config
from ganforge.training.trainer import Trainer


def build(out: Path, name: str, batch: int, overrides: dict, preset: str) -> Trainer:
    model = {"name": "progan", "preset": preset, "width": 32, "latent_dim": 64, "options": {"stage_steps": 1}}
    model.update(overrides)
    config = resolve_config(overrides={"model": model, "data": {"source": "digits", "resolution": 16},
                                       "train": {"steps": 10 ** 6, "batch_size": batch, "seed": 0, "device": "cpu",
                                                 "log_every": 10 ** 6, "sample_every": 10 ** 9,
                                                 "checkpoint_every": 10 ** 9, "keep_checkpoints": 0},
                                       "out": str(out), "name": name})
    return Trainer(config, out / name, quiet=True)


def ema_decay(decay: float, steps: int) -> float:
    """The trainer's warmed-up EMA decay after `steps` averaged steps (training/ema.py)."""
    return min(decay, (1.0 + steps) / (10.0 + steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1600, help="the run whose schedule is tabulated")
    parser.add_argument("--batches", default="16,32,64")
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--block", type=int, default=3)
    parser.add_argument("--preset", default="paper")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(tempfile.mkdtemp(prefix="progan-budget-"))
    # with stage_steps 1: step 0 is 4 px, step 2 is 8 px stable, step 4 on is 16 px (fully grown)
    depth_step = {4: 0, 8: 2, 16: 4}
    variants = {}
    for batch in map(int, args.batches.split(",")):
        for px in depth_step:
            variants[(f"wgan-gp b{batch}", px)] = (batch, {})
    variants[("wgan, no penalty b16", 16)] = (16, {"penalty": "none"})
    variants[("wgan, no penalty b64", 16)] = (64, {"penalty": "none"})
    try:
        trainers = {key: build(out, f"v{i}", batch, overrides, args.preset)
                    for i, (key, (batch, overrides)) in enumerate(variants.items())}
        for (_, px), trainer in trainers.items():  # warm-up at the variant's depth
            trainer.step = depth_step[px]
            trainer.train_step()
        times: dict = {key: [] for key in trainers}
        for _ in range(args.blocks):
            for key, trainer in trainers.items():
                start = time.process_time()
                for _ in range(args.block):
                    trainer.step = depth_step[key[1]]
                    trainer.train_step()
                times[key].append((time.process_time() - start) / args.block)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    cost = {key: statistics.median(v) for key, v in times.items()}
    print("| recipe | px | CPU ms / step | CPU ms / image | images / CPU s |")
    print("|---|---:|---:|---:|---:|")
    for (name, px), seconds in cost.items():
        batch = variants[(name, px)][0]
        print(f"| {name} | {px} | {seconds * 1e3:.0f} | {seconds * 1e3 / batch:.2f} | {batch / seconds:.0f} |")

    # the table's run: 1 + 2 * max_depth equal phases (stage_steps = steps // 5 at 16 px)
    steps, periods = args.steps, 5
    stage = steps // periods
    phases = [("4 px", 4), ("fade in 8 px", 8), ("8 px", 8), ("fade in 16 px", 16), ("16 px", 16)]
    rest = steps - stage * (periods - 1)
    base = cost[("wgan-gp b16", 16)] if ("wgan-gp b16", 16) in cost else None
    print(f"\nschedule of a {steps}-step run at batch 16 (stage_steps {stage}):")
    print("| phase | steps | images | CPU share (b16 costs) |")
    print("|---|---:|---:|---:|")
    spent = [(name, n, n * cost[("wgan-gp b16", px)] if base else 0.0)
             for (name, px), n in zip(phases, [stage] * (periods - 1) + [rest])]
    total = sum(s for _, _, s in spent) or 1.0
    for name, n, s in spent:
        print(f"| {name} | {n} | {n * 16} | {s / total:.0%} |")
    print(f"\nEMA decay 0.999 after the warm-up at step {steps}: {ema_decay(0.999, steps):.4f} "
          f"(half-life {torch.tensor(0.5).log().item() / torch.tensor(ema_decay(0.999, steps)).log().item():.0f} "
          f"steps; the last phase is {rest} steps)")


if __name__ == "__main__":
    main()
