"""videogan on moving MNIST digits (one digit per clip, 16 frames, 32 px): identity consistency and motion
statistics of generated clips next to real ones, CPU time of training, and an animated GIF figure.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/video_moving_digits.py train --out runs/bench-video [--steps N]
        [--opt KEY=VALUE] [--set model.preset=paper] [--cpu-minutes 10]
    OMP_NUM_THREADS=1 python benchmarks/video_moving_digits.py evaluate runs/bench-video/videogan --n 300 --seed 2
        [--checkpoint step_000750] [--pilot]

`train` trains the recipe's own steps (videogan's default: 4,000) unless --steps says otherwise.

`train` runs single-threaded and records its CPU time (resource.getrusage) at every checkpoint (250 steps) in
RUN/cpu_time.json, adding up the CPU time of every invocation (a stopped run resumed with the same command keeps
counting). `evaluate`
scores N generated clips (the EMA generator and the live one) against N real clips made with another seed, at the
training length and at twice it (`sample --frames 32`), writes results to RUN/bench_video.json and the figure
docs/figures/video_moving_digits.gif (top row real clips, then generated ones) and a still,
docs/figures/video_moving_digits_frames.png (frames 1, 5, 9, 13; 2 real clips, then 14 generated, a clip a row), and
prints a markdown table.
The MNIST files come from ../shared/data/mnist (override with --data-root)."""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pairs(items: list[str]) -> dict:
    """KEY=VALUE strings as a dict, values read as JSON where they parse (numbers, booleans), else strings."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def train(args) -> None:
    import ganforge

    run = Path(args.out) / "videogan"
    clock = run / "cpu_time.json"
    record = {"train_cpu_seconds": 0.0, "at_step": {}} | (json.loads(clock.read_text()) if clock.exists() else {})
    before, start = record["train_cpu_seconds"], cpu_seconds()

    def stamp(trainer) -> None:  # CPU time so far at every checkpoint, so a stopped run still has its cost
        spent = before + cpu_seconds() - start
        over = bool(args.cpu_minutes) and spent >= 60 * args.cpu_minutes
        if over:
            trainer.stop_reason = f"CPU budget of {args.cpu_minutes} minutes spent"
        if trainer.step % 250 == 0 or trainer.step == trainer.config.train.steps or over:
            record["train_cpu_seconds"] = spent
            record["at_step"][str(trainer.step)] = spent
            record["threads"] = torch.get_num_threads()
            clock.write_text(json.dumps(record, indent=1))

    overrides = {"model.name": "videogan", "data.source": "moving-digits", "data.root": args.data_root,
                 "data.resolution": args.resolution, "model.width": args.width,
                 "model.options": {"frames": args.frames, "digits": "1", "digit_source": "mnist"} | pairs(args.opt),
                 "train.ema": args.ema, "train.sample_every": 500,
                 "train.checkpoint_every": 250, "train.keep_checkpoints": 20, "train.log_every": 50,
                 "train.device": "cpu", "out": args.out, "name": "videogan"} | pairs(args.set)
    if args.steps:  # else the recipe's own length (videogan's preset, or --set model.preset=paper's)
        overrides["train.steps"] = args.steps
    if (run / "checkpoints" / "last.safetensors").exists():
        ganforge.train(resume=run, quiet=True, callbacks=[stamp], **({"train.steps": args.steps} if args.steps else {}))
    else:
        ganforge.train(quiet=True, callbacks=[stamp], **overrides)
    print(f"trained to step {max(map(int, record['at_step']), default=0)} in {record['train_cpu_seconds'] / 60:.1f} CPU-minutes "
          f"({torch.get_num_threads()} thread)")


def scores(generated: torch.Tensor, real: torch.Tensor, size: int) -> dict:
    from ganforge.metrics.video import evaluate_clips

    result = evaluate_clips(generated, real, digit_size=size, digits=1)
    result["record"] = result["record"].to_dict()
    return result


def class_shares(clips: torch.Tensor, size: int) -> list[float]:
    """Share of clips whose first frame the digits classifier reads as 0, 1, ..., 9."""
    from ganforge.metrics.video import digit_classes

    counts = torch.bincount(digit_classes(clips[:, :1], size).flatten(), minlength=10).float()
    return (counts / counts.sum()).tolist()


def evaluate(args) -> None:
    import ganforge
    from ganforge import media
    from ganforge.data.video import load_video

    model = ganforge.load(args.run, args.checkpoint)
    config = model.config
    start = cpu_seconds()
    frames = model.family.frames
    size = model.family.info.facts["digit_size"]
    lengths = (frames,) if args.pilot else (frames, 2 * frames)
    real = {t: load_video("moving-digits", config.data.resolution, None, config.data.root, args.n, frames=t,
                          per_clip="1", digit_source="mnist", seed=12345).as_float() for t in lengths}
    results = {"step": model.step, "checkpoint": args.checkpoint, "n": args.n, "seed": args.seed}
    for name, generator in (("ema", model.generator), ("live", model.family.generator)):
        generator.eval()
        for t in lengths:
            inputs = model.sample_inputs(args.n, seed=args.seed) | {"frames": torch.full((args.n,), t)}
            with torch.no_grad():
                clips = torch.cat([model.family.generate(generator, {k: v[i:i + 100] for k, v in inputs.items()})
                                   for i in range(0, args.n, 100)]).clamp(-1, 1)
            results[f"{name}_{t}"] = scores(clips, real[t], size)
            if t == frames:  # which digits: a high consistency can hide a generator drawing few classes
                results[f"{name}_{t}"]["classes"] = class_shares(clips, size)
            if name == "ema" and t == frames and not args.pilot:
                shown = torch.cat([real[t][:8], clips[:16]])
                figure = ROOT / "docs" / "figures" / "video_moving_digits.gif"
                media.save(media.Video(shown, fps=model.family.sample_info()["fps"]), figure, zoom=2, nrow=8)
                strip = torch.cat([real[t][:2], clips[:14]])[:, ::4]  # a still: every 4th frame, a clip a row
                media.save(media.Images(strip.flatten(0, 1)), figure.with_name("video_moving_digits_frames.png"),
                           zoom=2, nrow=strip.shape[1])
        if not model.meta.get("has_ema") or args.pilot:
            break
    results["real_classes"] = class_shares(real[frames], size)
    results["eval_cpu_seconds"] = cpu_seconds() - start
    clock = Path(args.run) / "cpu_time.json"
    spent = json.loads(clock.read_text())["at_step"] if clock.exists() else {}
    results["train_cpu_seconds"] = spent.get(str(model.step))  # the CPU time training took to this checkpoint
    (Path(args.run) / ("bench_pilot.json" if args.pilot else "bench_video.json")).write_text(json.dumps(results, indent=1))
    print("| generator | frames | identity-consistent (real) | consistent and moving (real) | mean frame change "
          "(real) | digit speed px/frame (real) | frozen clips (real) | per-frame FD, digits extractor |")
    print("|---|---|---|---|---|---|---|---|")
    for key, value in results.items():
        if isinstance(value, dict) and "motion" in value:
            m = value["motion"]
            print(f"| {key.split('_')[0]} | {key.split('_')[1]} | {value['identity_consistency']:.1%} "
                  f"({value['identity_consistency_real']:.1%}) | {value['consistent_moving']:.1%} "
                  f"({value['consistent_moving_real']:.1%}) | {m['mean_change']:.4f} ({m['mean_change_real']:.4f}) "
                  f"| {m['speed_px']:.2f} ({m['speed_px_real']:.2f}) | {m['frozen']:.1%} ({m['frozen_real']:.1%}) "
                  f"| {value['frame_fd']:.2f} |")
    for key, value in [(k, v["classes"]) for k, v in results.items() if isinstance(v, dict) and "classes" in v] + \
            [("real", results["real_classes"])]:
        print(f"{key}: first-frame digit classes " + " ".join(f"{d}:{p:.0%}" for d, p in enumerate(value))
              + f"; {sum(p > 0.02 for p in value)}/10 classes over 2%")
    train_cpu = results["train_cpu_seconds"]
    print(f"step {model.step}; training {train_cpu / 60 if train_cpu else float('nan'):.1f} CPU-minutes; "
          f"evaluation {results['eval_cpu_seconds'] / 60:.1f} CPU-minutes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    t = commands.add_parser("train")
    t.add_argument("--steps", type=int, default=0, help="training steps; 0: the recipe's own (train.steps of the "
                   "preset)")
    t.add_argument("--width", type=int, default=16)
    t.add_argument("--resolution", type=int, default=32)
    t.add_argument("--frames", type=int, default=16)
    t.add_argument("--ema", type=float, default=0.999)
    t.add_argument("--data-root", default=str(MNIST))
    t.add_argument("--out", default="runs/bench-video")
    t.add_argument("--opt", action="append", default=[], help="KEY=VALUE: a videogan option (model.options)")
    t.add_argument("--set", action="append", default=[], help="KEY=VALUE: any config override, e.g. "
                   "train.batch_size=32 or model.preset=paper")
    t.add_argument("--cpu-minutes", type=float, default=0, help="stop (with a checkpoint) once training has used "
                   "this much CPU time; 0: no limit")
    e = commands.add_parser("evaluate")
    e.add_argument("run")
    e.add_argument("--checkpoint", default="last")
    e.add_argument("--n", type=int, default=500)
    e.add_argument("--seed", type=int, default=1, help="seed of the generated clips (pilots used 1; another seed "
                   "gives clips not seen while choosing a recipe)")
    e.add_argument("--pilot", action="store_true", help="quick look: the EMA generator at the training length "
                   "only, no figure, results in RUN/bench_pilot.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.time()
    (train if args.command == "train" else evaluate)(args)
    print(f"wall {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
