"""A real small search on digits: 12 TPE trials of DCGAN (median pruning), the trial table in Markdown, the best config
retrained to check it reproduces the trial's FID, and the PNG plots copied to docs/figures/tune_*.png.

    OMP_NUM_THREADS=1 python benchmarks/tune_digits.py [--trials 12] [--steps 300] [--out runs/tune-digits-demo]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from pathlib import Path

import torch

import ganforge
from ganforge.api import resolve_config
from ganforge.tune import trial_rows, tune

SPACE = {
    "train.lr_g": {"type": "float", "low": 5e-5, "high": 2e-3, "log": True},
    "train.lr_d": {"type": "float", "low": 5e-5, "high": 2e-3, "log": True},
    "train.beta1": {"type": "categorical", "choices": [0.0, 0.5]},
    "model.loss": {"type": "categorical", "choices": ["nonsaturating", "hinge", "least-squares"]},
    "train.n_critic": {"type": "int", "low": 1, "high": 2},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("runs/tune-digits-demo"))
    parser.add_argument("--figures", type=Path, default=Path("docs/figures"))
    args = parser.parse_args()

    base = {"data.source": "digits", "model.name": "dcgan", "model.width": 32, "train.batch_size": 64,
            "train.steps": args.steps, "train.eval_every": args.steps // 3, "train.eval_n": 500,
            "train.sample_every": args.steps, "train.checkpoint_every": args.steps, "train.log_every": 50,
            "train.device": "cpu", "train.seed": 0}
    start = time.perf_counter()
    result = tune(SPACE, base, trials=args.trials, sampler="tpe", study_name="digits-demo", out=args.out,
                  objective="fid", pruner="median")
    search_seconds = time.perf_counter() - start

    columns, rows = trial_rows(result.study, "fid", None)
    print(f"\nmachine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s); search wall time {search_seconds:.0f} s; counts {result.counts}\n")
    shown = [c for c in columns if c != "note"]
    print("| " + " | ".join(shown) + " |")
    print("|" + "---|" * len(shown))
    for row in rows:
        cells = [f"{row[c]:.4g}" if isinstance(row[c], float) else ("" if row[c] is None else str(row[c]))
                 for c in shown]
        print("| " + " | ".join(cells) + " |")

    start = time.perf_counter()
    shutil.rmtree(args.out / "retrain", ignore_errors=True)
    run = ganforge.train(resolve_config(result.best_config, {"out": str(args.out / "retrain"), "name": "best"}),
                         quiet=True)
    last = sorted((run / "eval").glob("step_*.json"))[-1]
    retrained = json.loads(last.read_text())["scores"]["fid"]
    print(f"\nbest trial {result.best_number}: FID {result.best_value!r}; retrained from best.yaml: FID {retrained!r} "
          f"({'identical' if retrained == result.best_value else 'DIFFERENT'}, {time.perf_counter() - start:.0f} s)")

    args.figures.mkdir(parents=True, exist_ok=True)
    for png in sorted((args.out / "plots").glob("*.png")):
        target = args.figures / f"tune_{png.name}"
        shutil.copyfile(png, target)
        print(f"figure: {target} ({target.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
