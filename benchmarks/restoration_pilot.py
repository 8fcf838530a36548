"""Short pilots of the `photos` restore preset (issue 21): train with option overrides for a few thousand steps on
the pairs a `restoration.py --task photos --work DIR` run left in DIR, score every checkpoint on the held-out crops
with one pass (no windows, no flips: cheap and comparable with earlier pilots), diagnose the last one, and score it
once more with the preset's own inference (64 px windows + 8 flips). One JSON line per pilot is appended to --log.

    OMP_NUM_THREADS=1 python benchmarks/restoration_pilot.py --work DIR --out RUNS --name tol8-s0 --seed 0 \
        --opt tolerance=8
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

import ganforge  # noqa: E402


def value(text: str):
    """A YAML-ish scalar: JSON where it parses (numbers, true/false), the string otherwise."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def pairs(items: list[str]) -> dict:
    return {key: value(v) for key, v in (item.split("=", 1) for item in items)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="a restoration.py --task photos work folder (pairs-train/, "
                        "pairs-test/)")
    parser.add_argument("--out", required=True, help="folder for the pilot runs")
    parser.add_argument("--name", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--every", type=int, default=500, help="checkpoint (and score) every N steps")
    parser.add_argument("--opt", action="append", default=[], help="model option, e.g. tolerance=8")
    parser.add_argument("--train", action="append", default=[], help="train setting, e.g. lr_g=0.002")
    parser.add_argument("--log", default="restoration_pilots.jsonl")
    args = parser.parse_args()
    work, options = Path(args.work), pairs(args.opt)
    cpu = time.process_time()
    run = Path(ganforge.train(quiet=True, out=args.out, name=args.name, data={"source": str(work / "pairs-train")},
                              model={"name": "restore", "preset": "photos"} | ({"options": options} if options else {}),
                              train={"steps": args.steps, "seed": args.seed, "log_every": 100,
                                     "sample_every": 10 ** 9, "checkpoint_every": args.every,
                                     "keep_checkpoints": 100} | pairs(args.train)))
    train_cpu = time.process_time() - cpu
    inputs = sorted((work / "pairs-test" / "A").glob("*.png"))
    clean = [work / "pairs-test" / "B" / path.name for path in inputs]
    one_pass = {"ensemble": 1, "window": 0}
    curve = restoration.gain_curve(run, inputs, clean, one_pass)
    diagnosis = restoration.diagnose(restoration.load(run, one_pass), inputs, clean)
    model = restoration.load(run)  # the preset's inference: windows + flips
    x, y = restoration.stack(inputs), restoration.stack(clean)
    with torch.no_grad():
        out = model.family.translate(model.generator, x)
    out = ((out + 1) * 127.5).round() / 127.5 - 1  # as a written 8-bit image would be
    gain = restoration.psnr(out, y) - restoration.psnr(x, y)
    record = {"name": args.name, "seed": args.seed, "steps": args.steps, "opts": options, "train": pairs(args.train),
              "train_cpu_min": round(train_cpu / 60, 2), "one_pass_curve": curve, "diagnosis_one_pass": diagnosis,
              "ensemble_end": (round(float(gain.mean()), 3), round(float((gain > 0).float().mean()), 3))}
    print(json.dumps(record), flush=True)
    with open(args.log, "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
