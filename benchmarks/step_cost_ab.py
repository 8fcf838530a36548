"""CPU seconds per training step of two recipes of one family, interleaved in one process (A/B).

Both trainers are built with the families table's settings (digits, 16 px, width 32, latent 64, benchmarks/
families_digits.py) plus each variant's config overrides, warmed up, and then advanced in alternating blocks of
`--block` steps; each block's process CPU time is charged to its variant. Interleaving makes the load from other
processes fall on both variants alike, and a block covering a whole lazy-R1 cycle (StyleGAN: 16 steps) makes the
mean include the R1 steps at their real frequency.

    OMP_NUM_THREADS=1 python benchmarks/step_cost_ab.py --family sngan \
        --a '{"model.options": {"joint_critic": false}}' --b '{}' --blocks 4 --block 5
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ganforge.api import resolve_config
from ganforge.config import apply_overrides
from ganforge.training.trainer import Trainer


def build(family: str, preset: str, overrides: dict, out: Path, name: str, seed: int) -> Trainer:
    config = resolve_config(overrides={"model": {"name": family, "preset": preset, "width": 32, "latent_dim": 64},
                                       "data": {"source": "digits", "resolution": 16},
                                       "train": {"steps": 10 ** 6, "seed": seed, "device": "cpu",
                                                 "log_every": 10 ** 6, "sample_every": 10 ** 9,
                                                 "checkpoint_every": 10 ** 9, "keep_checkpoints": 0},
                                       "out": str(out), "name": name})
    config = apply_overrides(config, overrides)
    return Trainer(config, out / name, quiet=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", required=True)
    parser.add_argument("--a", default="{}", help="config overrides of variant A (JSON)")
    parser.add_argument("--b", default="{}", help="config overrides of variant B (JSON)")
    parser.add_argument("--preset-a", default="default")
    parser.add_argument("--preset-b", default="default")
    parser.add_argument("--blocks", type=int, default=4, help="blocks per variant")
    parser.add_argument("--block", type=int, default=5, help="steps per block")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(tempfile.mkdtemp(prefix="step-ab-"))
    try:
        trainers = {"A": build(args.family, args.preset_a, json.loads(args.a), out, "a", args.seed),
                    "B": build(args.family, args.preset_b, json.loads(args.b), out, "b", args.seed)}
        for trainer in trainers.values():  # warm-up: first-call allocations, oneDNN primitive caches
            trainer.train_step()
            trainer.step = 0
        per_block: dict[str, list[float]] = {k: [] for k in trainers}
        for i in range(args.blocks):
            for key in (("A", "B") if i % 2 == 0 else ("B", "A")):
                trainer = trainers[key]
                start = time.process_time()
                for _ in range(args.block):
                    trainer.train_step()
                    trainer.step += 1  # as fit() does: lazy R1 and other schedules see the step advance
                per_block[key].append((time.process_time() - start) / args.block)
        for key, values in per_block.items():
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            print(json.dumps({"family": args.family, "variant": key,
                              "preset": args.preset_a if key == "A" else args.preset_b,
                              "overrides": json.loads(args.a if key == "A" else args.b),
                              "cpu_s_per_step": round(statistics.fmean(values), 4), "spread": round(spread, 4),
                              "blocks": [round(v, 4) for v in values], "steps": args.blocks * args.block}))
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
