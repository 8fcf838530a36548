"""Conditional WaveGAN on the Free Spoken Digit Dataset against a CPU budget: trains one recipe and, every
`--eval-every` steps, scores clips of the EMA generator with ganforge's shipped `spoken-digits` classifier
(requested-digit accuracy: share of clips classified as the digit asked for; near-silent share), printing one JSON
line per checkpoint of the curve. Issue 15's target: >= 60% requested-digit accuracy with < 5% near-silent clips
within 60 CPU-minutes (single-threaded process CPU time).

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/audio_conditional.py --out runs/audio-cond/NAME
        [--data ../shared/data/fsdd-5-speakers.tar] [--cpu-minutes 60] [--steps N] [--eval-every 500]
        [--n-eval 200] [--set model.options.aux_weight=1 ...] [--preset paper] [--extra-ema 0.999@1500 ...]

The recipe is wavegan's default conditional preset (see ganforge/families/wavegan.py) plus the `--set` overrides;
`--steps` overrides the preset's train.steps (which the learning-rate decay's schedule is a fraction of). Training
stops at the run's steps or when its training CPU time (time.process_time of this process, evaluation excluded, data
loading included) reaches `--cpu-minutes`; a checkpoint (step_N, all kept) is written at every evaluation; `--device cuda` runs the same recipe on a GPU (step
counts only; its CPU time means nothing). WORK/curve.jsonl holds the curve; the run folder is a normal ganforge run
(`ganforge sample OUT --class 7`, `ganforge evaluate OUT`). `--extra-ema D@S ...` also keeps a moving average of G
with the constant decay D from step S on (a copy of G before; no warm-up, unlike train.ema, whose decay is
min(train.ema, (1 + k) / (10 + k)) after k averaged steps, i.e. below 0.999 for the first 8,990 steps) beside the
run's own and scores it at every evaluation (`ema_D@S` in the curve's rows; with `--report`, on the report's number
of clips too): averages do not feed back into training, so one run measures several on the same trajectory (their
updates count as evaluation CPU; a resumed run restarts them from the live weights).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn

from audio_fsdd import recordings  # this folder: the shared FSDD tar, extracted
from ganforge.api import resolve_config, resume_config
from ganforge.config import validate
from ganforge.families import get as get_family
from ganforge.media import Audio
from ganforge.nn.audio import SpectrogramClassifier, stft_power
from ganforge.metrics.audio import at_rate, near_silent_share, resolve_audio_extractor
from ganforge.training.ema import EMA, refresh_norm_stats
from ganforge.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "data" / "fsdd-5-speakers.tar"


def parse_value(text: str):
    """'1e-4' -> float, '8' -> int, 'true' -> True, else the string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def overrides_from(pairs: list[str]) -> dict:
    """['model.width=8', 'model.options.aux_weight=1'] as a nested override dict (options under model.options)."""
    out: dict = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key.startswith("model.options."):
            out.setdefault("model.options", {})[key.split(".", 2)[2]] = parse_value(value)
        else:
            out[key] = parse_value(value)
    return out


def within_class_spread(clips: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over classes of mean |a - b| / mean |x| for pairs of clips of one class (the first half of the class's
    clips against the second): ~0 when the generator ignores its noise (one clip per class); real FSDD clips: ~1.5."""
    spreads = []
    for label in labels.unique():
        group = clips[labels == label]
        half = group.shape[0] // 2
        if half:
            a, b = group[:half], group[half:2 * half]
            spreads.append(((a - b).abs().mean() / (0.5 * (a.abs().mean() + b.abs().mean()) + 1e-8)).item())
    return sum(spreads) / max(1, len(spreads))


def share_above(clips: torch.Tensor, sample_rate: int, cutoff: float = 1000.0) -> float:
    """Mean over clips of the share of each clip's STFT power (n_fft 256, hop 128) above `cutoff` Hz: session 4's
    measure of the missing high band (all 2,500 real FSDD clips: 11.8%)."""
    n_fft, hop = SpectrogramClassifier.N_FFT, SpectrogramClassifier.HOP
    power = stft_power(clips, n_fft, hop, torch.hann_window(n_fft)).sum(-1)  # (N, bins)
    high = torch.arange(power.shape[1]) * sample_rate / n_fft > cutoff
    return (power[:, high].sum(1) / power.sum(1).clamp_min(1e-12)).mean().item()


class Curve:
    """Trainer callback: every `every` steps, requested-digit accuracy and near-silent share of `n` clips (n/10 per
    digit, fixed noise); stops the run when its training CPU time reaches the budget."""

    def __init__(self, path: Path, every: int, n: int, cpu_budget: float, spent_before: float, started: float,
                 extra_ema: tuple[tuple[float, int], ...] = ()):
        self.path, self.every, self.n, self.cpu_budget = path, every, n, cpu_budget
        self.extra_decays = tuple(extra_ema)
        self.extra: dict[tuple[float, int], nn.Module] = {}  # made at the first step from the live G
        self.classifier = resolve_audio_extractor(None)
        self.spent_before, self.started, self.eval_cpu = spent_before, started, 0.0
        self.labels = torch.arange(n) % 10
        self.losses: dict[str, float] = {}  # the latest logged losses (see `watch`)

    def watch(self, trainer: Trainer) -> None:
        """Keep the losses the trainer logs (its flush_logs' averages) for the curve's rows."""
        flush = trainer.flush_logs

        def flush_and_keep(rate: float):
            values = flush(rate)
            self.losses = values or self.losses
            return values

        trainer.flush_logs = flush_and_keep

    def train_cpu(self) -> float:
        return self.spent_before + time.process_time() - self.started - self.eval_cpu

    def update_extra(self, trainer: Trainer) -> None:
        """One step of every extra EMA (the trainer's own updated before the step counter moved on)."""
        if not self.extra_decays:
            return
        begun = time.process_time()
        live = trainer.family.generator
        if not self.extra:
            self.extra = {spec: EMA(live, spec[0]).module for spec in self.extra_decays}
        theirs = [p.detach() for p in live.parameters()]
        with torch.no_grad():
            for (decay, start), module in self.extra.items():  # the step just taken is trainer.step - 1
                weight = 1.0 - decay if trainer.step - 1 >= start else 1.0
                torch._foreach_lerp_(list(module.parameters()), theirs, weight)
                torch._foreach_copy_(list(module.buffers()), list(live.buffers()))
        self.eval_cpu += time.process_time() - begun

    def extra_generator(self, trainer: Trainer, spec: tuple[float, int]) -> nn.Module:
        """The extra average `spec` with fresh norm statistics (as the trainer's `sampling_generator`)."""
        module, family, rng = self.extra[spec], trainer.family, torch.Generator().manual_seed(12345)

        def forward(_: int) -> None:
            size = trainer.config.train.batch_size
            inputs = family.sample_inputs(size, rng, labels=torch.randint(0, family.n_classes, (size,), generator=rng))
            family.generate(module, {k: v.to(trainer.device) for k, v in inputs.items()})

        refresh_norm_stats(module, forward)
        return module

    @torch.no_grad()
    def score(self, trainer: Trainer, generator: nn.Module | None = None, n: int | None = None) -> dict:
        generator = generator if generator is not None else trainer.sampling_generator()
        generator.eval()
        family, n = trainer.family, n or self.n
        labels = torch.arange(n) % 10
        rng = torch.Generator().manual_seed(1234)
        inputs = family.sample_inputs(n, rng, labels=labels)
        clips = family.generate(generator, {k: v.to(trainer.device) for k, v in inputs.items()}).float().cpu()
        if generator is family.generator:
            generator.train()
        audio = Audio(clips.clamp(-1, 1), family.sample_rate, labels)
        _, logits = self.classifier.extract(at_rate(audio, self.classifier), 250)
        wanted = torch.tensor([self.classifier.classes.index(c) for c in (trainer.data.classes[i]
                                                                          for i in labels.tolist())])
        predicted = logits.argmax(1)
        hits = (predicted == wanted).float()
        return {"accuracy": hits.mean().item(),
                "near_silent": near_silent_share(audio.tensor, audio.sample_rate),
                "classes_predicted": int(predicted.unique().numel()),
                "spread": round(within_class_spread(audio.tensor, labels), 3),
                "above_1khz": round(share_above(audio.tensor, audio.sample_rate), 4),
                "per_digit": [round(hits[labels == d].mean().item(), 2) for d in range(10)]}

    def score_extra(self, trainer: Trainer, n: int | None = None) -> dict:
        """{"ema_D@S": score} for every extra average."""
        rounded = {}
        for spec in self.extra:
            row = self.score(trainer, self.extra_generator(trainer, spec), n)
            rounded[f"ema_{spec[0]:g}@{spec[1]}"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
        return rounded

    def __call__(self, trainer: Trainer) -> None:
        self.update_extra(trainer)
        at_budget = self.train_cpu() >= self.cpu_budget
        if trainer.step % self.every and trainer.step != trainer.config.train.steps and not at_budget:
            return
        begun = time.process_time()
        row = {"step": trainer.step, "train_cpu_min": round(self.train_cpu() / 60, 2),
               **{k: round(v, 4) if isinstance(v, float) else v for k, v in self.score(trainer).items()},
               **self.score_extra(trainer),
               **{k: round(v, 3) for k, v in self.losses.items() if k not in ("img_per_s", "lr_scale")}}
        self.eval_cpu += time.process_time() - begun
        row["eval_cpu_min"] = round(self.eval_cpu / 60, 2)
        print(json.dumps(row), flush=True)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if at_budget:
            trainer.stop_reason = f"CPU budget of {self.cpu_budget / 60:.1f} minutes reached"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ARCHIVE)
    parser.add_argument("--out", type=Path, required=True, help="the run folder (resumed when it has a checkpoint)")
    parser.add_argument("--cpu-minutes", type=float, default=60.0)
    parser.add_argument("--steps", type=int, default=None, help="train.steps (default: the preset's)")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--n-eval", type=int, default=200)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides KEY=VALUE")
    parser.add_argument("--report", type=int, default=0, help="after training, score this many clips (N/10 per digit) "
                        "with every audio metric, write OUT/report.json, OUT/digits.wav and --figure")
    parser.add_argument("--figure", type=Path, default=None, help="spectrograms of digits 0-9 (with --report)")
    parser.add_argument("--extra-ema", nargs="*", default=[], help="DECAY@START: also keep and score a moving "
                        "average of G with this constant decay from this step on (curve rows' ema_DECAY@START)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.process_time()
    args.out.mkdir(parents=True, exist_ok=True)
    cpu_log = args.out / "cpu.json"
    spent = json.loads(cpu_log.read_text())["train_cpu_seconds"] if cpu_log.exists() else 0.0
    resume = (args.out / "checkpoints" / "last.safetensors").exists()
    with tempfile.TemporaryDirectory() as tmp:
        folder = recordings(args.data, tmp)
        overrides = {"model.name": "wavegan", "model.preset": args.preset, "data.source": str(folder),
                     "train.device": args.device, "train.sample_every": 2000,
                     "train.checkpoint_every": args.eval_every, "train.keep_checkpoints": 1000,
                     "train.log_every": 100, "out": str(args.out.parent), "name": args.out.name,
                     **({"train.steps": args.steps} if args.steps else {}), **overrides_from(args.set)}
        options = {"length": 8192, "sample_rate": 8000, "conditional": True, **overrides.pop("model.options", {})}
        if resume:
            config = resume_config(args.out, {"train.steps": args.steps} if args.steps else {})
        else:
            config = resolve_config(None, {**overrides, "model.options": options})
            validate(config)
        data = get_family("wavegan").load_data(config)
    extra_ema = []
    for spec in args.extra_ema:
        decay, _, start = spec.partition("@")
        try:
            extra_ema.append((float(decay), int(start or 0)))
        except ValueError:
            parser.error(f"--extra-ema: expected DECAY@START such as 0.999@1500, got '{spec}'")
        if not 0 < extra_ema[-1][0] < 1 or extra_ema[-1][1] < 0:
            parser.error(f"--extra-ema: the decay must be in (0, 1) and the start >= 0, got '{spec}'")
    curve = Curve(args.out / "curve.jsonl", args.eval_every, args.n_eval, args.cpu_minutes * 60, spent, started,
                  tuple(extra_ema))
    trainer = Trainer(config, args.out, resume=resume, quiet=True, data=data, callbacks=[curve])
    curve.watch(trainer)
    try:
        trainer.fit()
    finally:
        cpu_log.write_text(json.dumps({"train_cpu_seconds": curve.train_cpu(), "step": trainer.step,
                                       "eval_cpu_seconds": curve.eval_cpu}) + "\n")
    print(f"done: step {trainer.step}, {curve.train_cpu() / 60:.1f} training CPU-minutes "
          f"(+{curve.eval_cpu / 60:.1f} evaluating)", flush=True)
    if args.report:
        report(args.out, data, args.report, args.figure, curve.train_cpu())
        if curve.extra:  # the extra EMAs on as many clips (requested-digit accuracy, near-silent share, per digit)
            extra = {"ema_train": {k: round(v, 4) if isinstance(v, float) else v
                                   for k, v in curve.score(trainer, n=args.report).items()},  # the same clips' noise
                     **curve.score_extra(trainer, args.report)}
            (args.out / "report_extra_ema.json").write_text(json.dumps(extra, indent=1) + "\n")
            print(json.dumps(extra), flush=True)


def report(run: Path, data, n: int, figure: Path | None, train_cpu: float) -> None:
    """Every audio metric of N clips of the run's EMA generator (N/10 per digit, seed 1) against all the clips."""
    import ganforge
    from ganforge import media
    from ganforge.metrics.audio import evaluate_audio

    begun = time.process_time()
    model = ganforge.load(run)
    fake = model.sample(n, seed=1, labels=torch.arange(n) % 10)
    scores = evaluate_audio(fake, Audio(data.waves, model.family.sample_rate), class_names=model.classes,
                            reference_split=f"train (all {len(data)} clips)")
    row = {k: v for k, v in scores.items() if isinstance(v, (int, float))}
    row.update(step=model.step, train_cpu_minutes=round(train_cpu / 60, 2), record=scores["record"].to_dict(),
               report_cpu_minutes=round((time.process_time() - begun) / 60, 2))
    (run / "report.json").write_text(json.dumps(row, indent=1) + "\n")
    digits = model.sample(10, seed=2, labels=torch.arange(10))
    media.save(digits, run / "digits.wav")
    if figure is not None:
        media.save(digits, figure)
    print(json.dumps({k: v for k, v in row.items() if k != "record"}), flush=True)


if __name__ == "__main__":
    main()
