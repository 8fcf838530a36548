"""WaveGAN vs SpecGAN vs real data on the Free Spoken Digit Dataset (8 kHz, 8,192 samples ~ 1 s), both models
class-conditional, scored with ganforge's shipped `spoken-digits` classifier.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/audio_fsdd.py [--data ../shared/data/fsdd-5-speakers.tar]
        [--work runs/audio-fsdd] [--wavegan-steps 1500] [--specgan-steps 800] [--n 500]

Trains (or resumes) runs WORK/wavegan and WORK/specgan with a CPU recipe (hinge loss, one critic step, Adam(2e-4,
0, 0.9), width 8, batch 32, EMA 0.999; the papers' WGAN-GP recipe with 5 critic steps at width 64 is out of reach of
a CPU budget), accumulating each run's CPU time (time.process_time, single-threaded) in WORK/NAME/cpu.json across
resumes. Then scores N samples per model (N/10 per digit) and the real clips: Inception Score and Fréchet distance
in the classifier's features, classes covered, conditional accuracy (clips classified as the digit asked for),
near-silent share and the nearest-neighbour ratio; writes WORK/results.json, spectrogram figures
docs/figures/audio_fsdd_{real,wavegan,specgan}.png and one WAV per model with the digits 0-9 in order
(WORK/NAME_digits.wav).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import ganforge
from ganforge import media
from ganforge.data.audio import load_audio
from ganforge.media import Audio
from ganforge.metrics.audio import evaluate_audio

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "data" / "fsdd-5-speakers.tar"
RECIPE = {"model.loss": "hinge", "model.penalty": "none", "train.n_critic": 1, "train.lr_g": 2e-4,
          "train.lr_d": 2e-4, "train.beta1": 0.0, "train.beta2": 0.9, "model.width": 8, "train.batch_size": 32,
          "train.ema": 0.999, "train.sample_every": 500, "train.checkpoint_every": 250, "train.log_every": 50}
METRICS = ("fid", "is", "mode_collapse", "silence", "nn", "accuracy")


def train(name: str, folder: Path, work: Path, steps: int) -> float:
    """Train or resume WORK/NAME to `steps`; returns the run's total CPU seconds so far."""
    run = work / name
    log = run / "cpu.json"
    spent = json.loads(log.read_text())["cpu_seconds"] if log.exists() else 0.0
    done = ganforge.load(run).step if (run / "checkpoints" / "last.safetensors").exists() else 0
    if done < steps:
        started = time.process_time()
        if done:
            ganforge.train(resume=run, quiet=True, **{"train.steps": steps})
        else:
            options = {"length": 8192, "sample_rate": 8000, "conditional": True}
            ganforge.train(quiet=True, **RECIPE, **{"model.name": name, "data.source": str(folder),
                                                     "model.options": options, "train.steps": steps,
                                                     "out": str(work), "name": name})
        spent += time.process_time() - started
        log.write_text(json.dumps({"cpu_seconds": spent, "steps": steps}) + "\n")
    print(f"{name}: {steps} steps, {spent / 60:.1f} CPU-minutes", flush=True)
    return spent


def flat(scores: dict) -> dict:
    """The numbers of an evaluation, the mode-collapse report's included."""
    out = {k: v for k, v in scores.items() if isinstance(v, (int, float))}
    out.update({f"mode_collapse/{k}": v for k, v in scores.get("mode_collapse", {}).items()
                if isinstance(v, (int, float))})
    out["record"] = scores["record"].to_dict()
    return out


def recordings(data: Path, tmp: str) -> Path:
    """The FSDD recordings folder: `data` itself, or the shared tar extracted into `tmp`."""
    if data.is_dir():
        return data
    import tarfile

    with tarfile.open(data) as tar:
        tar.extractall(tmp, filter="data")
    return Path(tmp) / "recordings"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ARCHIVE)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "audio-fsdd")
    parser.add_argument("--wavegan-steps", type=int, default=1500)
    parser.add_argument("--specgan-steps", type=int, default=800)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--figures", type=Path, default=ROOT / "docs" / "figures")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = recordings(args.data, tmp)
        cpu = {name: train(name, folder, args.work, steps)
               for name, steps in (("wavegan", args.wavegan_steps), ("specgan", args.specgan_steps))}
        real = load_audio(str(folder), 8000, 8192, "peak")
    started = time.process_time()
    real_clips = Audio(real.waves, 8000)
    labels = torch.arange(args.n) % 10
    pick = torch.stack([torch.nonzero(real.labels == d).flatten()[:args.n // 10] for d in range(10)], 1).flatten()
    results = {"real": flat(evaluate_audio(Audio(real.waves[pick], 8000, real.labels[pick]), real_clips, METRICS,
                                           class_names=real.classes, reference_split="train (all 2500 clips)"))}
    media.save(Audio(real.waves[pick[:10]], 8000, real.labels[pick[:10]]),
               args.figures / "audio_fsdd_real.png")
    for name in cpu:
        model = ganforge.load(args.work / name)
        fake = model.sample(args.n, seed=1, labels=labels)
        results[name] = flat(evaluate_audio(fake, real_clips, METRICS, class_names=model.classes,
                                            reference_split="train (all 2500 clips)"))
        results[name].update(cpu_minutes=round(cpu[name] / 60, 1), steps=model.step)
        digits = model.sample(10, seed=2, labels=torch.arange(10))
        media.save(digits, args.figures / f"audio_fsdd_{name}.png")
        media.save(digits, args.work / f"{name}_digits.wav")
    results["eval_cpu_minutes"] = round((time.process_time() - started) / 60, 1)
    (args.work / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    keys = ("is", "fid", "classes_covered", "conditional_accuracy", "near_silent", "nn_ratio")
    print("| | " + " | ".join(keys) + " |")
    for name, row in results.items():
        if isinstance(row, dict):
            print(f"| {name} | " + " | ".join(f"{row.get(k, float('nan')):.3g}" for k in keys) + " |")


if __name__ == "__main__":
    main()
