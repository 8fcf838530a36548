"""Recipe search for the restore family: many variants of benchmarks/restoration.py's runs side by side.

Each variant (a name and config overrides, from a JSON file) trains in its own process on the same pairs as
benchmarks/restoration.py (CIFAR-10: 5,000 training images marked with seed 1, 1,000 held-out ones with seed 2;
photos: 128 px crops, held-out photos chelsea, coffee, flower), and a monitor scores every checkpoint as it appears
on the held-out images (mean PSNR gain over the watermarked input and share of images improved, 8-bit outputs, as
benchmarks/restoration.py's curve), appending one JSON line per checkpoint to OUT/curves.jsonl, so a run cut short
still reports what it reached. Made for an accelerator (many small runs at once); the chosen recipe is then measured
on CPU by benchmarks/restoration.py.

    python benchmarks/restoration_sweep.py pack DIR            # CIFAR tar + the bundled photos into DIR (no network)
    python benchmarks/restoration_sweep.py run DIR VARIANTS.json --out OUT --device cuda --work /tmp/sweep

The three rounds run for issue 21 (on one H200, 17, 17 and 10 variants at a time, about 4 minutes a round) are
benchmarks/results/restoration_sweep_round{1,2,3}.json (overrides of the `paper` preset, the recipe before the
sweep) and their scores benchmarks/results/restoration_sweep.jsonl (GPU runs: not bit-reproducible; a variant run
twice differs by a few tenths of a dB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import restoration  # noqa: E402  (benchmarks/restoration.py: the same pairs and scoring)

import ganforge  # noqa: E402
from ganforge.data.pairs import make_pairs  # noqa: E402


def pack(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(restoration.TAR, folder / restoration.TAR.name)
    np.savez_compressed(folder / "photos.npz", **restoration.bundled_photos())


def prepare(task: str, packed: Path, work: Path) -> None:
    """The task's training and held-out pairs under work/task (as benchmarks/restoration.py makes them)."""
    root = work / task
    root.mkdir(parents=True, exist_ok=True)
    if task == "cifar":
        restoration.TAR = packed / restoration.TAR.name
        train, test = restoration.cifar_images(root, 5000, 1000)
    else:
        photos = dict(np.load(packed / "photos.npz"))
        restoration.bundled_photos = lambda: photos
        train, test = restoration.photo_crops(root)
    make_pairs("watermark", train, root / "pairs-train", seed=1)
    make_pairs("watermark", test, root / "pairs-test", seed=2)
    if task == "photos":  # the same crops with 4 different marks each: more marks to learn from
        for side in "AB":
            (root / "pairs-train-x4" / side).mkdir(parents=True)
        for copy in range(4):
            make_pairs("watermark", train, root / f"copy{copy}", seed=1 + 1000 * copy)
            for side in "AB":
                for path in (root / f"copy{copy}" / side).iterdir():
                    path.rename(root / "pairs-train-x4" / side / f"c{copy}_{path.name}")
    (root / "ready").touch()


def train_one(name: str, spec: dict, work: Path, device: str) -> None:
    task = spec.get("task", "cifar")
    sets = {k: dict(v) for k, v in spec.items() if k in ("data", "model", "train")}
    model = {"name": "restore"} | sets.get("model", {})
    train = {"log_every": 100, "sample_every": 10 ** 9, "checkpoint_every": spec.get("every", 1000),
             "keep_checkpoints": 100, "device": device} | sets.get("train", {})
    data = {"source": str(work / task / spec.get("pairs", "pairs-train"))} | sets.get("data", {})
    torch.manual_seed(0)
    ganforge.train(quiet=True, out=str(work / "runs"), name=name, data=data, model=model, train=train)
    (work / "runs" / name / "done").touch()


def held_out(work: Path, task: str, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    inputs = sorted((work / task / "pairs-test" / "A").glob("*.png"))
    x = restoration.stack(inputs).to(device)
    y = restoration.stack([work / task / "pairs-test" / "B" / p.name for p in inputs]).to(device)
    return x, y, restoration.psnr(x, y)


def score(path: Path, x: torch.Tensor, y: torch.Tensor, before: torch.Tensor, device: str) -> dict:
    model = ganforge.load(path, device=device)
    with torch.no_grad():
        out = torch.cat([model.family.translate(model.generator, x[i:i + 250]) for i in range(0, len(x), 250)])
    out = ((out + 1) * 127.5).round() / 127.5 - 1
    gain = restoration.psnr(out, y) - before
    truth = ((x - y).abs().amax(1, keepdim=True) > 1 / 255).expand_as(x)
    inside = restoration.psnr(torch.where(truth, out, x), y) - before  # the output kept on damaged pixels only
    return {"step": int(model.step), "gain_db": round(float(gain.mean()), 3),
            "min_db": round(float(gain.min()), 2), "inside_db": round(float(inside.mean()), 3),
            "inside_improved": round(float((inside > 0).float().mean()), 4),
            "median_db": round(float(gain.median()), 3), "improved": round(float((gain > 0).float().mean()), 4),
            "worse": round(float((gain < 0).float().mean()), 4)}


def run(packed: Path, variants: dict, out: Path, device: str, work: Path, jobs: int, budget: float) -> None:
    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    log = (out / "sweep.log").open("a")
    tasks = sorted({spec.get("task", "cifar") for spec in variants.values()})
    me = [sys.executable, __file__]
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    preparing = [subprocess.Popen(me + ["prepare", str(packed), task, "--work", str(work)], env=env, stdout=log,
                                  stderr=subprocess.STDOUT) for task in tasks]
    for p in preparing:
        p.wait()
    print(f"pairs ready after {time.time() - started:.0f}s", file=log, flush=True)
    waiting = list(variants)
    running: dict[str, subprocess.Popen] = {}
    seen: set[Path] = set()
    held = {task: held_out(work, task, device) for task in tasks}
    curves = (out / "curves.jsonl").open("a")
    while waiting or running:
        while waiting and len(running) < jobs:
            name = waiting.pop(0)
            running[name] = subprocess.Popen(me + ["one", name, json.dumps(variants[name]), "--work", str(work),
                                                   "--device", device], env=env, stdout=log, stderr=subprocess.STDOUT)
        for name, process in list(running.items()):
            if process.poll() is not None:
                print(f"{name} exited {process.returncode} at {time.time() - started:.0f}s", file=log, flush=True)
                del running[name]
        for name, spec in variants.items():
            folder = work / "runs" / name / "checkpoints"
            finished = (work / "runs" / name / "done").exists()
            for path in sorted(folder.glob("step_*.safetensors")) if folder.is_dir() else []:
                if path in seen:
                    continue
                try:
                    row = score(path, *held[spec.get("task", "cifar")], device)
                except Exception as error:  # written but not yet complete: next round
                    print(f"{path}: {error!r}", file=log, flush=True)
                    continue
                seen.add(path)
                row = {"variant": name, "t": round(time.time() - started), **row}
                curves.write(json.dumps(row) + "\n")
                curves.flush()
            if finished and (work / "runs" / name) not in seen:
                seen.add(work / "runs" / name)
                row = score(work / "runs" / name / "checkpoints" / "last.safetensors",
                            *held[spec.get("task", "cifar")], device)
                curves.write(json.dumps({"variant": name, "t": round(time.time() - started), "last": True,
                                         **row}) + "\n")
                curves.flush()
        if time.time() - started > budget:
            print("budget spent: stopping", file=log, flush=True)
            for process in running.values():
                process.kill()
            break
        time.sleep(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("verb", choices=("pack", "run", "prepare", "one"))
    parser.add_argument("args", nargs="*")
    parser.add_argument("--out", default="sweep-out")
    parser.add_argument("--work", default="/tmp/restore-sweep")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--budget", type=float, default=480, help="seconds before running variants are stopped")
    a = parser.parse_args()
    work = Path(a.work)
    if a.verb == "pack":
        pack(Path(a.args[0]))
    elif a.verb == "prepare":
        prepare(a.args[1], Path(a.args[0]), work)
    elif a.verb == "one":
        train_one(a.args[0], json.loads(a.args[1]), work, a.device)
    else:
        variants = json.loads(Path(a.args[1]).read_text())
        run(Path(a.args[0]), variants, Path(a.out), a.device, work, a.jobs, a.budget)


if __name__ == "__main__":
    main()
