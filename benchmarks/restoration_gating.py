"""Inference-only check (issue 21): would gating a trained restore model's change remove its false alarms? The
preset's output (64 px windows + 8 flips) is kept only where the ensemble's mean mask >= t, or where the change is
>= t 8-bit levels, for a grid of t; scored on the held-out crops and, as a blind calibration set, on a seeded subset
of the training pairs. One JSON record per checkpoint.

    OMP_NUM_THREADS=1 python benchmarks/restoration_gating.py --work WORK --checkpoint CKPT --out gating.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import restoration  # noqa: E402

MASK = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
LEVELS = (0, 1, 2, 4, 8, 12)


def gains(model, folder: Path, names: list[str]) -> dict:
    """{gate: (mean gain dB, median, share improved)} over the crops `names` of folder/A -> folder/B."""
    x = restoration.stack([folder / "A" / n for n in names])
    y = restoration.stack([folder / "B" / n for n in names])
    with torch.no_grad():
        parts = [model.family.restore(model.generator, x[i:i + 8]) for i in range(0, len(x), 8)]
    out, mask = (torch.cat(p) for p in zip(*parts))
    change = out - x
    level = change.abs().amax(1, keepdim=True) * 127.5
    before = restoration.psnr(x, y)
    result = {}
    for kind, signal, grid in (("mask", mask, MASK), ("levels", level, LEVELS)):
        for t in grid:
            gated = x + change * (signal >= t).float() if t > 0 else out
            gated = ((gated.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1  # as a written 8-bit image
            gain = restoration.psnr(gated, y) - before
            result[f"{kind}>={t}"] = [round(float(gain.mean()), 3), round(float(gain.median()), 3),
                                      round(float((gain > 0).float().mean()), 3)]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="a restoration.py --task photos work folder")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--train-crops", type=int, default=99, help="training pairs scored for calibration")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    work, cpu = Path(args.work), time.process_time()
    model = restoration.load(Path(args.checkpoint))
    test = sorted(p.name for p in (work / "pairs-test" / "A").glob("*.png"))
    train = sorted(p.name for p in (work / "pairs-train" / "A").glob("*.png"))
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:args.train_crops].tolist()
    record = {"checkpoint": str(args.checkpoint), "step": int(model.step),
              "held_out": gains(model, work / "pairs-test", test),
              "train_subset": gains(model, work / "pairs-train", [train[i] for i in pick])}
    record["cpu_s"] = round(time.process_time() - cpu, 1)
    Path(args.out).write_text(json.dumps(record, indent=1))
    for gate in record["held_out"]:
        print(f"{gate:12s} held-out {record['held_out'][gate]}  train {record['train_subset'][gate]}")


if __name__ == "__main__":
    main()
