"""Data-parallel training on CPU: 2 torchrun processes (gloo) against 1 process at the same global batch.

Both train the same DCGAN (no batch norm, so per-process batch statistics cannot differ) on digits with the same
seed; the script prints both loss curves, their largest difference, and the wall-clock of each.

    python benchmarks/ddp_vs_single.py [--steps 200] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(command: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-2000:])
    return time.perf_counter() - start


def curve(run_dir: Path) -> dict[int, dict[str, float]]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return {int(r["step"]): {k: float(v) for k, v in r.items() if k in ("d_loss", "g_loss")}
                for r in csv.DictReader(handle)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        flags = ["train", "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--g-norm", "none",
                 "--d-norm", "none", "--width", "32", "--log-every", "20", "--sample-every", "100000",
                 "--checkpoint-every", "100000", "--out", tmp, "--quiet"]
        single = run([sys.executable, "-m", "ganforge", *flags, "--name", "single"])
        ddp = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                   "-m", "ganforge", *flags, "--name", "ddp"])
        one, two = curve(Path(tmp) / "single"), curve(Path(tmp) / "ddp")
    print(f"{args.steps} steps, global batch {args.batch_size}, DCGAN width 32 without batch norm, digits 16 px")
    print("| step | d_loss 1 proc | d_loss 2 procs | g_loss 1 proc | g_loss 2 procs |")
    print("|---|---|---|---|---|")
    for step in sorted(one):
        a, b = one[step], two[step]
        print(f"| {step} | {a['d_loss']:.4f} | {b['d_loss']:.4f} | {a['g_loss']:.4f} | {b['g_loss']:.4f} |")
    worst = max(abs(one[s][k] - two[s][k]) for s in one for k in ("d_loss", "g_loss"))
    print(f"largest loss difference: {worst:.2e}")
    print(f"wall clock (process start to exit): 1 process {single:.1f} s, 2 processes {ddp:.1f} s "
          f"(speed-up {single / ddp:.2f}x)")


if __name__ == "__main__":
    main()
