"""Soak test: kill -9 a real `ganforge train` again and again, half the time in the middle of a checkpoint write,
resume after each kill, and count what went wrong.

Reports failed resumes, corrupt checkpoints (any file in checkpoints/ that does not load, hash and NaN/inf checked),
steps lost per kill (steps trained before the kill minus the step resumed from), temp files left behind (a killed
write leaves one; the next start must delete it), duplicated metrics rows, and whether the final weights, EMA and
optimiser state equal those of an uninterrupted run with the same seed (bit-exact resume).

Writes are caught mid-way through the test hook GANFORGE_SOAK_WRITE_PAUSE (ganforge/training/checkpoint.py):
every checkpoint write pauses that long half-way, and a "write" kill is sent as soon as a temp file appears.

    OMP_NUM_THREADS=1 python benchmarks/soak.py --kills 20 --during-write 10 --out /tmp/soak
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ganforge.errors import GanforgeError  # noqa: E402
from ganforge.training import checkpoint as ckpt  # noqa: E402

TINY = ["--data", "digits", "--resolution", "16", "--width", "8", "--latent-dim", "16", "--batch-size", "16",
        "--log-every", "1", "--sample-every", "100000", "--seed", "3"]


def start(args, run: Path, resume: bool, pause: float) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    env[ckpt.PAUSE_ENV] = str(pause)
    where = ["--resume", str(run)] if resume else [*TINY, "--out", str(run.parent), "--name", run.name,
                                                    "--checkpoint-every", str(args.checkpoint_every)]
    command = [sys.executable, "-m", "ganforge", "train", *where, "--steps", str(args.steps), "--quiet"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def logged_step(run: Path) -> int:
    """The last step in metrics.csv (logged every step), ignoring a row still being written."""
    path = run / "metrics.csv"
    lines = path.read_text().split("\n")[1:-1] if path.exists() else []
    return int(lines[-1].split(",")[0]) if lines else 0


def checkpoint_step(run: Path) -> int | None:
    try:
        return ckpt.read_meta(run / "checkpoints" / "last.safetensors")["step"]
    except GanforgeError:
        return None


def temp_files(run: Path) -> list[str]:
    """Temp files of checkpoint writes, and of metrics tables being rewritten, that a kill left behind."""
    folder = run / "checkpoints"
    found = [*folder.glob(ckpt.TEMP_GLOB), *run.glob(".*.csv.tmp")]
    return sorted(str(p.relative_to(run)) for p in found)


def wait_for(process: subprocess.Popen, ready, timeout: float = 120.0) -> bool:
    """Poll every 2 ms until `ready()` (True) or the process exits (False)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            return False
        if ready():
            return True
        time.sleep(0.002)
    raise TimeoutError("the training process made no progress")


def kill_round(args, run: Path, kind: str, rng: random.Random, first: bool) -> dict:
    """Start (or resume) training, kill it with SIGKILL during training or a checkpoint write; what was seen."""
    before, stale = logged_step(run), temp_files(run)
    # only "write" rounds slow their writes down, so that "train" kills land in training
    process = start(args, run, resume=not first, pause=args.pause if kind == "write" else 0.0)
    # trained past where the killed process had got to: start-up (lock, temp-file clean-up, restore) is over
    started = wait_for(process, lambda: checkpoint_step(run) is not None and logged_step(run) > before)
    if not started:
        return {"kind": kind, "failed": process.wait() != 0, "error": process.stderr.read().strip()[-300:]}
    stale_left = [name for name in stale if (run / name).exists()]
    if kind == "write":  # in the write of last.safetensors or of the periodic step_N copy that follows it
        target = rng.choice([".last.", ".step_"])
        hit = wait_for(process, lambda: any(Path(name).name.startswith(target) for name in temp_files(run)))
    else:
        deadline = time.time() + rng.uniform(0.2, args.max_delay)
        hit = wait_for(process, lambda: time.time() > deadline)
    if not hit:  # finished before the kill: the soak is too short for its kills
        return {"kind": kind, "failed": process.returncode != 0, "finished": True}
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()
    done, resumable = logged_step(run), checkpoint_step(run)
    writing = [name for name in temp_files(run) if name.startswith("checkpoints")]
    return {"kind": kind, "failed": False, "during_write": writing, "steps_done": done,
            "checkpoint": resumable, "steps_lost": done - (resumable or 0), "stale_temp_left": stale_left}


def corrupt_checkpoints(run: Path) -> list[str]:
    bad = []
    for path in sorted((run / "checkpoints").glob("*.safetensors")):
        try:
            ckpt.load(path)
        except GanforgeError as error:
            bad.append(str(error))
    return bad


def same_state(a: Path, b: Path) -> bool:
    left, meta_a = ckpt.load(a / "checkpoints" / "last.safetensors")
    right, meta_b = ckpt.load(b / "checkpoints" / "last.safetensors")
    keep = ("family.", "ema.", "optim.")
    left = {k: v for k, v in left.items() if k.startswith(keep)}
    right = {k: v for k, v in right.items() if k.startswith(keep)}
    return meta_a["step"] == meta_b["step"] and left.keys() == right.keys() and all(
        bool((left[k] == right[k]).all()) for k in left)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--during-write", type=int, default=10, help="of the kills, how many wait for a write")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--pause", type=float, default=0.2, help="seconds each checkpoint write pauses half-way")
    parser.add_argument("--max-delay", type=float, default=2.0, help="longest wait before a 'train' kill (s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("soak"))
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    reference, run = args.out / "reference", args.out / "soak"

    started = time.time()
    straight = start(args, reference, resume=False, pause=0.0)
    if straight.wait() != 0:
        sys.exit(f"the uninterrupted run failed: {straight.stderr.read()}")
    rng = random.Random(args.seed)
    kinds = ["write"] * args.during_write + ["train"] * (args.kills - args.during_write)
    rng.shuffle(kinds)
    rounds, corrupt = [], 0
    for index, kind in enumerate(kinds):
        rounds.append(kill_round(args, run, kind, rng, first=index == 0))
        bad = corrupt_checkpoints(run)
        corrupt += len(bad)
        print(json.dumps(rounds[-1] | ({"corrupt": bad} if bad else {})), flush=True)
    final = start(args, run, resume=True, pause=args.pause)
    final_ok = final.wait() == 0
    with (run / "metrics.csv").open(newline="") as handle:
        steps = [int(r["step"]) for r in csv.DictReader(handle)]
    kills = [r for r in rounds if "steps_lost" in r]
    summary = {
        "kills": len(kills),
        "kills_during_checkpoint_write": sum(bool(r["during_write"]) for r in kills),
        "failed_resumes": sum(r["failed"] for r in rounds) + (not final_ok),
        "corrupt_checkpoints": corrupt + len(corrupt_checkpoints(run)),
        "steps_lost_total": sum(r["steps_lost"] for r in kills),
        "steps_lost_max": max((r["steps_lost"] for r in kills), default=0),
        "stale_temp_files_after_restart": sum(len(r.get("stale_temp_left", [])) for r in rounds),
        "leftover_temp_files": len(temp_files(run)),
        "duplicated_metrics_rows": len(steps) - len(set(steps)),
        "final_equals_uninterrupted": final_ok and same_state(run, reference),
        "steps": args.steps, "checkpoint_every": args.checkpoint_every, "write_pause_s": args.pause,
        "seconds": round(time.time() - started, 1),
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()
