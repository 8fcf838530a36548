"""The default demo, old preset against new, side by side: `ganforge train --preset paper` and `ganforge train`.

Runs the README's demo command (DCGAN on the bundled digits, every setting from the preset) once per preset, one
after the other on the same machine and data, as a child process with the machine's own thread settings (as a
user would run it; set OMP_NUM_THREADS to pin them). Per run: steps, wall seconds, CPU seconds (the child's
user + system time), then 2,000 samples of the EMA generator (seed 1) scored against all 1,797 digits with
ganforge's `digits` extractor: FD, KID, classes covered and the largest class's share (as
benchmarks/demo_quality.py scores the demo). Prints a Markdown table with the machine and its load average
(other jobs make wall time meaningless; CPU time much less so) and appends it to `--md` when given.

    python benchmarks/demo_presets.py                      # the full demo twice (about 2 x 10 min on 2 idle cores)
    python benchmarks/demo_presets.py --steps 500 --md /tmp/demo.md   # a shortened check of the script
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def train(preset: str, out: Path, steps: int | None) -> dict:
    """Run the demo command with `preset` into out/demo-PRESET; its steps, wall and CPU seconds."""
    name = f"demo-{preset}"
    shutil.rmtree(out / name, ignore_errors=True)
    command = [sys.executable, "-m", "ganforge", "train", "--name", name, "--out", str(out)]
    if preset != "default":
        command += ["--preset", preset]
    if steps:
        command += ["--steps", str(steps)]
    cpu, load, start = child_cpu_seconds(), os.getloadavg()[0], time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return {"preset": preset, "run": out / name, "wall_s": time.perf_counter() - start,
            "cpu_s": child_cpu_seconds() - cpu, "load": (load + os.getloadavg()[0]) / 2,
            "command": "ganforge train" + (f" --preset {preset}" if preset != "default" else "")
                       + (f" --steps {steps}" if steps else "")}


def score(row: dict, n: int) -> dict:
    import ganforge
    from ganforge.data import load_images
    from ganforge.metrics import evaluate_images

    model = ganforge.load(row["run"])
    fake = model.sample(n, seed=1).tensor
    real = load_images("digits", None).as_float()
    scores = evaluate_images(fake, real, metrics="fid,kid,mode_collapse", extractor="digits")
    report = scores["mode_collapse"]
    return row | {"steps": model.step, "fd": scores["fid"], "kid": scores["kid"],
                  "classes": report.get("classes_covered"), "largest": report.get("largest_class_share")}


def markdown(rows: list[dict], machine: str) -> str:
    lines = [f"Machine: {machine}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             "| command | steps | wall s | CPU s | load avg | FD (digits) | KID | classes covered | largest class share |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| `{r['command']}` | {r['steps']} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | {r['load']:.1f} | "
                     f"{r['fd']:.2f} | {r['kid']:.4f} | {r['classes']} | {r['largest']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="paper,default", help="comma list, run in this order")
    parser.add_argument("--steps", type=int, default=None, help="override the presets' steps (a shortened check)")
    parser.add_argument("--n", type=int, default=2000, help="samples scored per run")
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--md", type=Path, default=None, help="append the Markdown table to this file")
    args = parser.parse_args()
    threads = os.environ.get("OMP_NUM_THREADS")
    machine = (f"{platform.machine()} {os.cpu_count()} CPU(s), torch {torch.__version__}, "
               f"{'OMP_NUM_THREADS=' + threads if threads else 'torch default threads'}")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        rows = [train(preset, out, args.steps) for preset in args.presets.split(",") if preset]
        rows = [score(row, args.n) for row in rows]
    table = markdown(rows, machine)
    print(table)
    if args.md:
        with args.md.open("a") as handle:
            handle.write(table + "\n\n")


if __name__ == "__main__":
    main()
