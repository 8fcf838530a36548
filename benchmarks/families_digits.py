"""Train every image-generation family for the same CPU time on one data set and score it.

Each family keeps its preset (its paper's loss, regulariser and optimiser) with a common network size. A short
probe measures each family's steps per second, and the run is then given as many steps as fit in the budget (so
schedules that depend on train.steps, such as ProGAN's growing, complete), with a wall-clock stop as a guard.
Scores: Frechet distance and KID in the named extractor's features, precision/recall, and for class-conditional
families the extractor's accuracy on the requested class.

    OMP_NUM_THREADS=1 python benchmarks/families_digits.py --budget 120 --out /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
import time
from pathlib import Path

import torch

import ganforge
from ganforge.api import resolve_config
from ganforge.data import load_images
from ganforge.metrics import evaluate_images, load_extractor
from ganforge import media
from ganforge.training.trainer import Trainer

FAMILIES = ["dcgan", "cgan", "wgan", "wgan-gp", "sngan", "stylegan", "progan", "biggan", "vaegan"]
FIGURES = Path(__file__).resolve().parent.parent / "docs" / "figures"


def config_for(family: str, args, steps: int, name: str, options: dict | None = None):
    overrides = {"model": {"name": family, "preset": args.preset, "width": args.width, "latent_dim": args.latent_dim,
                           "options": dict(options or {})},
                 "data": {"source": args.data, "resolution": args.resolution, "limit": args.limit},
                 "train": {"steps": steps, "seed": args.seed, "device": "cpu", "log_every": max(1, steps // 20),
                           "sample_every": 10 ** 9, "checkpoint_every": 10 ** 9, "keep_checkpoints": 0},
                 "out": str(args.out), "name": name}
    # ProGAN's growth schedule is its preset's (model.options.grow_share of train.steps, which is this run's steps):
    # the script no longer sets stage_steps itself, which overrode the preset (the same steps // 5 as grow_share 1)
    return resolve_config(overrides=overrides)


def probe_count(trainer: Trainer, probe_steps: int) -> int:
    """`probe_steps` rounded up to whole cycles of the family's lazy regularisation: with R1 every N D steps
    (StyleGAN: 16) and n_critic D steps per step, the pattern repeats every N / gcd(N, n_critic) steps, so the
    probe's mean includes the R1 steps at the frequency the run will have them."""
    config = trainer.config
    lazy = config.model.penalty == "r1" and hasattr(trainer.family, "r1_interval")
    interval = trainer.family.r1_interval() if lazy else 1
    period = interval // math.gcd(interval, config.train.n_critic)
    return -(-probe_steps // period) * period


def steps_per_second(family: str, args, options: dict) -> float:
    """Training steps per CPU second from a short probe run (after a warm-up step)."""
    probe = Path(args.out) / f"probe-{family}"
    shutil.rmtree(probe, ignore_errors=True)
    trainer = Trainer(config_for(family, args, 10 ** 6, probe.name, options), probe, quiet=True)
    # measure at the end of any schedule: ProGAN fully grown (its slowest steps); 10 ** 6 is a multiple of 16
    trainer.step = 10 ** 6
    trainer.train_step()
    trainer.step += 1
    count = probe_count(trainer, args.probe_steps)
    start = time.process_time()
    for _ in range(count):
        trainer.train_step()
        trainer.step += 1  # as fit() does (train_step does not): lazy R1 is due only on every N-th step
    rate = count / (time.process_time() - start)
    shutil.rmtree(probe, ignore_errors=True)
    return rate


def class_accuracy(model, extractor, per_class: int) -> float:
    """Share of samples generated for class k that the extractor classifies as k, over all classes."""
    k = len(model.classes)
    labels = torch.arange(k).repeat_interleave(per_class)
    images = model.sample(len(labels), seed=1, labels=labels).tensor
    _, logits = extractor.extract(images)
    return (logits.argmax(1) == labels).float().mean().item()


def run_family(family: str, args, options: dict | None = None, tag: str = "") -> dict:
    options = options or {}
    label = family + (f"+{tag}" if tag else "")
    if args.cpu_seconds:  # a fixed CPU budget, no probe: train until it is spent (or --steps, if given, is reached)
        steps = args.steps or 10 ** 6
    else:
        steps = args.steps or max(10, int(steps_per_second(family, args, options) * args.budget))
    name = (re.sub(r"[^A-Za-z0-9_.-]+", "-", label) + (f"-{args.preset}" if args.preset != "default" else "")
            + (f"-s{args.seed}" if args.seed else ""))
    shutil.rmtree(Path(args.out) / name, ignore_errors=True)
    config = config_for(family, args, steps, name, options)
    # a guard against a probe that misjudged the speed; with --steps the run gets exactly its steps (under load a
    # CPU second buys fewer steps, and comparisons at fixed steps must not be cut short by it)
    started = time.process_time()
    deadline = time.process_time() + 1.2 * args.budget + 10 if not args.steps else math.inf
    if args.cpu_seconds:
        deadline = started + args.cpu_seconds  # checked after every step: the run stops within one step of it

    def guard(trainer):
        if time.process_time() >= deadline:
            trainer.stop_reason = "time budget"

    run = ganforge.train(config, quiet=True, callbacks=[guard])
    seconds = time.process_time() - started
    model = ganforge.load(run)
    fake = model.sample(args.n, seed=0).tensor
    # with --limit the reference is still the whole data set: a small-data run is judged on what it did not see
    real = load_images(args.data, args.resolution).as_float() if args.limit else model.real_images()
    scores = evaluate_images(fake, real, ("fid", "kid", "pr"), extractor=args.extractor, seed=0)
    row = {"family": label, "preset": args.preset, "seed": args.seed, "steps": model.step, "planned_steps": steps,
           "train_cpu_seconds": round(seconds, 1),
           "fd": round(scores["fid"], 2), "kid": round(scores["kid"], 4), "precision": round(scores["precision"], 3),
           "recall": round(scores["recall"], 3), "record": scores["record"].to_dict()}
    if args.cpu_seconds:
        row["cpu_budget"] = args.cpu_seconds
    if model.family.conditional:
        row["class_accuracy"] = round(class_accuracy(model, load_extractor(args.extractor), 100), 3)
        grid = model.sample(100, seed=2, labels=torch.arange(10).repeat(10) % len(model.classes))
    else:
        grid = model.sample(100, seed=2)
    if args.figures and not args.seed:
        media.save(grid, FIGURES / f"gen_{args.prefix}{name}.png", nrow=10)
    return row


def markdown_table(rows: list[dict]) -> str:
    """The result rows as a Markdown table (conditional families also get class accuracy)."""
    lines = ["| family | steps | CPU s | FD | KID | precision | recall | class accuracy |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        accuracy = f"{r['class_accuracy']:.1%}" if "class_accuracy" in r else "-"
        lines.append(f"| {r['family']} | {r['steps']} | {r['train_cpu_seconds']:.0f} | {r['fd']:.2f} | {r['kid']:.4f} | "
                     f"{r['precision']:.3f} | {r['recall']:.3f} | {accuracy} |")
    return "\n".join(lines)


def seeds_table(rows: list[dict]) -> str:
    """Rows of several seeds per (family, preset) as mean ± standard deviation (n seeds), old and new presets
    side by side (issue 20's table)."""
    import statistics

    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["family"], r.get("preset", "default")), []).append(r)

    def cell(values: list[float], digits: int, percent: bool = False) -> str:
        scale = 100 if percent else 1
        mean = statistics.fmean(values) * scale
        if len(values) == 1:
            return f"{mean:.{digits}f}" + ("%" if percent else "")
        spread = statistics.stdev(values) * scale
        return f"{mean:.{digits}f} ± {spread:.{digits}f}" + ("%" if percent else "")

    lines = ["| family | preset | seeds | steps | CPU s | FD | KID | precision | recall | class accuracy |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (family, preset), group in groups.items():
        accuracy = (cell([r["class_accuracy"] for r in group], 1, percent=True)
                    if all("class_accuracy" in r for r in group) else "-")
        lines.append(f"| {family} | {preset} | {len(group)} | {statistics.fmean(r['steps'] for r in group):.0f} | "
                     f"{statistics.fmean(r['train_cpu_seconds'] for r in group):.0f} | "
                     f"{cell([r['fd'] for r in group], 2)} | {cell([r['kid'] for r in group], 4)} | "
                     f"{cell([r['precision'] for r in group], 3)} | {cell([r['recall'] for r in group], 3)} | "
                     f"{accuracy} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--budget", type=float, default=120.0, help="training seconds per family")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--extractor", default="digits")
    parser.add_argument("--n", type=int, default=2000, help="generated samples scored")
    parser.add_argument("--probe-steps", type=int, default=5)
    parser.add_argument("--cpu-seconds", type=float, default=0.0,
                        help="train each family until it has used this many process CPU seconds (no probe; with "
                             "--steps, at most that many steps): old and new presets at exactly the same CPU")
    parser.add_argument("--steps", type=int, default=0, help="train this many steps instead of probing the speed "
                        "(no CPU-time guard then)")
    parser.add_argument("--diffaugment", default="", help="also run these families with DiffAugment (comma list)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                        help="a model option for every family in this run (repeatable; JSON values: "
                        "joint_critic=off, r1_every=1); rows and run names are tagged with it")
    parser.add_argument("--preset", default="default", help="the families' named preset: default | paper | ...")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-families"))
    parser.add_argument("--json", type=Path, default=None, help="append result rows (JSON lines) here")
    parser.add_argument("--prefix", default="", help="figure name prefix, e.g. cifar_")
    parser.add_argument("--no-figures", dest="figures", action="store_false")
    parser.add_argument("--table", type=Path, default=None, help="only print the Markdown table of a --json file")
    parser.add_argument("--by-seed", action="store_true", help="with --table: one row per family and preset, "
                        "mean ± standard deviation over the seeds in the file")
    args = parser.parse_args()
    if args.table is not None:
        rows = [json.loads(line) for line in args.table.read_text().splitlines() if line.strip()]
        print(seeds_table(rows) if args.by_seed else markdown_table(rows))
        return
    torch.set_num_threads(1)
    common = {}
    for item in args.opt:
        key, _, value = item.partition("=")
        try:
            common[key] = json.loads(value)
        except json.JSONDecodeError:
            common[key] = value
    tag = ",".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in common.items())
    jobs = [(f, dict(common), tag) for f in args.families.split(",") if f]
    jobs += [(f, {"diffaugment": "color,translation,cutout"}, "diffaugment") for f in args.diffaugment.split(",") if f]
    for family, options, tag in jobs:
        row = run_family(family, args, options, tag)
        print(json.dumps({k: v for k, v in row.items() if k != "record"}), flush=True)
        if args.json:
            with args.json.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
