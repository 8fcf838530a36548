"""Text GAN benchmarks: the SeqGAN oracle experiment and COCO captions, MLE vs SeqGAN vs the Gumbel-softmax GAN.

    OMP_NUM_THREADS=1 python benchmarks/text_gans.py oracle [--out runs/bench-text]
    OMP_NUM_THREADS=1 python benchmarks/text_gans.py coco [--coco ../shared/data/text/coco-captions-train.txt]
    OMP_NUM_THREADS=1 python benchmarks/text_gans.py default [--coco ...]

default: the issue's performance target as a user meets it: `ganforge train --model seqgan --data coco-train.txt`
with nothing else (the default preset), on the same seeded split as coco; the run stops at the end of its MLE stage
(scored: that is the MLE baseline at the same MLE steps), then resumes (bit-exact) to the end; BLEU-4 / Self-BLEU-4
of `--curve-n` samples every `--every-adv` adversarial steps, the final Texygen table on `--final-n` samples, and the
training CPU time (scoring excluded).

Both start the GANs from one maximum-likelihood pretraining (`--opt pretrained=RUN`), continue the MLE run for the
same number of extra steps as the MLE baseline, and record the score every few steps with the process CPU time
(single-threaded; the score evaluations are counted separately). The schedules are far shorter than the papers'
(see docs/results.md); the sizes are flags. Results go to OUT/<experiment>.json and a markdown table on stdout.

oracle: vocabulary 5,000, length 20, hidden 32, 10,000 training sequences from the seeded oracle (oracle_seed 0);
score: NLL-oracle of `--eval-n` generated sequences (SeqGAN's measure).
coco: the caption file is split (seeded) into `--test` held-out lines (BLEU references) and the rest (training);
score: NLL of the held-out text; at the end BLEU-2..5 and Self-BLEU-2..5 of 1,000 samples per model, the real
held-out lines' own Self-BLEU, and BLEU / Self-BLEU of the MLE model over sampling temperatures.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path

import torch

import ganforge
from ganforge.metrics.bleu import bleu_table
from ganforge.metrics.text import decode, nll, nll_oracle, text_scores, unique_share


class Recorder:
    """A trainer callback: the score every `every` steps, with the training CPU time so far (scoring excluded)."""

    def __init__(self, score, every: int, label: str, stages: tuple[str, ...] | None = None):
        self.score, self.every, self.label, self.stages = score, every, label, stages
        self.start = time.process_time()
        self.scoring = 0.0
        self.points: list[dict] = []

    def __call__(self, trainer) -> None:
        if trainer.step % self.every and trainer.step != trainer.config.train.steps:
            return
        if self.stages is not None and trainer.family.stage not in self.stages:
            return
        begin = time.process_time()
        value = self.score(trainer)
        self.scoring += time.process_time() - begin
        cpu = time.process_time() - self.start - self.scoring
        self.points.append({"step": trainer.step, "stage": trainer.family.stage, "score": value, "cpu_s": cpu})
        shown = (", ".join(f"{k} {v:.4f}" for k, v in value.items()) if isinstance(value, dict) else f"{value:.4f}")
        print(f"{self.label} step {trainer.step} ({trainer.family.stage}): {shown}  [{cpu:.0f} CPU-s]", flush=True)


def run(name: str, overrides: dict, recorder: Recorder, resume: Path | None = None) -> Path:
    torch.manual_seed(0)
    if resume is not None:
        return ganforge.train(resume=resume, quiet=True, callbacks=[recorder], **overrides)
    return ganforge.train(quiet=True, callbacks=[recorder], **{"model.name": name, **overrides})


def sampled(trainer, n: int, seed: int = 1) -> torch.Tensor:
    generator = trainer.family.generator
    generator.eval()
    with torch.no_grad():
        tokens = generator.sample(torch.rand(n, trainer.family.length, generator=torch.Generator().manual_seed(seed)))
    generator.train()
    return tokens


def experiment(args, source: str, common: dict, score) -> dict:
    out = Path(args.out)
    base = {"data.source": source, "out": str(out), "train.batch_size": 64, "train.log_every": 25,
            "train.sample_every": 10 ** 6, "train.checkpoint_every": 100, **common}
    opts = {"d_scale": args.d_scale, **({"max_length": args.max_length} if args.experiment == "coco" else {})}
    results = {}
    mle = Recorder(score, args.every, "mle")
    pre = run("seqgan", {**base, "name": f"{args.experiment}-mle", "train.steps": args.pretrain,
                         "model.options": {**opts, "mle_steps": 10 ** 9}}, mle)
    pretrain_cpu = mle.points[-1]["cpu_s"]
    run("seqgan", {"train.steps": args.pretrain + args.extra_mle}, mle, resume=pre)
    results["mle"] = mle.points
    seqgan = Recorder(score, args.every_adv, "seqgan")
    seq_run = run("seqgan", {**base, "name": f"{args.experiment}-seqgan", "train.steps": args.d_pretrain + args.adv,
                             "model.options": {**opts, "pretrained": str(pre), "mle_steps": 0,
                                               "d_steps": args.d_pretrain, "d_repeat": args.d_repeat,
                                               "rollouts": args.rollouts, "pg_batch": args.pg_batch}}, seqgan)
    results["seqgan"] = seqgan.points
    gumbel = Recorder(score, args.every_adv * 5, "gumbelgan")
    gum_run = run("gumbelgan", {**base, "name": f"{args.experiment}-gumbelgan", "train.steps": args.gumbel_steps,
                                "model.options": {**opts, "pretrained": str(pre), "mle_steps": 0,
                                                  "d_repeat": args.d_repeat, "anneal_steps": args.gumbel_steps,
                                                  "beta_max": 100.0}}, gumbel)
    results["gumbelgan"] = gumbel.points
    results["runs"] = {"mle": str(pre), "seqgan": str(seq_run), "gumbelgan": str(gum_run)}
    results["pretrain_cpu_s"] = pretrain_cpu
    return results


def oracle(args) -> dict:
    def score(trainer):
        return nll_oracle(sampled(trainer, args.eval_n), trainer.family.info.facts)

    results = experiment(args, "oracle", {}, score)
    for label, path in results["runs"].items():
        model = ganforge.load(path)
        results.setdefault("samples", {})[label] = [" ".join(s) for s in decode(model.sample(3, seed=7))]
    return results


def coco(args) -> dict:
    test, train, out = split_coco(args)
    held_out = {}

    def score(trainer):
        if "tokens" not in held_out:
            from ganforge.data.text import Tokenizer, Vocabulary

            vocabulary = Vocabulary(trainer.family.vocabulary)
            held_out["tokens"], _ = vocabulary.encode([Tokenizer().split(t) for t in test], trainer.family.length)
        trainer.family.generator.eval()
        value = nll(trainer.family.generator, held_out["tokens"])
        trainer.family.generator.train()
        return value

    results = experiment(args, str(out / "coco-train.txt"), {}, score)
    from ganforge.data.text import Tokenizer

    split = Tokenizer().split
    real = [split(t) for t in test]
    half = len(real) // 2  # the real text's own scores: one half of the held-out lines against the other half
    results["real"] = bleu_table(real[:half], real[half:]) | {"unique": unique_share(real[:half])}
    results["final"] = {}
    for label, path in results["runs"].items():
        model = ganforge.load(path)
        begin = time.process_time()
        results["final"][label] = text_scores(model, test, n=args.final_n, seed=3, training=train)
        results["final"][label]["score_cpu_s"] = time.process_time() - begin
        results.setdefault("samples", {})[label] = [" ".join(s) for s in decode(model.sample(8, seed=7))]
        print(label, results["final"][label], flush=True)
    mle = ganforge.load(results["runs"]["mle"])
    results["temperatures"] = {}
    for temperature in args.temperatures:
        scores = text_scores(mle, test, n=args.final_n // 2, seed=5, temperature=temperature)
        results["temperatures"][str(temperature)] = scores
        print("temperature", temperature, scores, flush=True)
    return results


def split_coco(args) -> tuple[list[str], list[str], Path]:
    lines = [line for line in Path(args.coco).read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(0).shuffle(lines)
    test, train = lines[:args.test], lines[args.test:]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "coco-train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
    (out / "coco-test.txt").write_text("\n".join(test) + "\n", encoding="utf-8")
    return test, train, out


def default(args) -> dict:
    from ganforge.data.text import Tokenizer
    from ganforge.families import get
    from ganforge.metrics.bleu import bleu, self_bleu

    test, train, out = split_coco(args)
    refs = [Tokenizer().split(t) for t in test]

    def score(trainer):  # BLEU-4 and Self-BLEU-4 of --curve-n samples from the generator as it is now
        tokens = sampled(trainer, args.curve_n, seed=11)
        vocabulary, end = trainer.family.vocabulary, trainer.family.vocabulary.index("<eos>")
        lines = [[vocabulary[i] for i in (row[:row.index(end)] if end in row else row)] for row in tokens.tolist()]
        return {"bleu4": bleu(lines, refs, 4), "self_bleu4": self_bleu(lines, 4)}

    preset = get("seqgan").preset
    mle_steps = preset["model"]["options"]["mle_steps"]
    begin = time.process_time()
    run_dir = out / "coco-default"
    if args.mle_run:  # the MLE stage of an earlier default run (resume is bit-exact: the same as training it here)
        shutil.rmtree(run_dir, ignore_errors=True)
        (run_dir / "checkpoints").mkdir(parents=True)
        shutil.copy(Path(args.mle_run) / "config.yaml", run_dir / "config.yaml")
        shutil.copy(Path(args.mle_run) / "checkpoints" / f"step_{mle_steps:06d}.safetensors",
                    run_dir / "checkpoints" / "last.safetensors")
        mle_cpu = json.loads((Path(args.mle_run).parent / "default.json").read_text())["mle_cpu_s"]
    else:
        recorder = Recorder(lambda trainer: score(trainer)["bleu4"], args.every_adv, "seqgan bleu4")
        recorder.every = 10 ** 9  # MLE stage: no scoring (the stage end is scored below)
        run_dir = ganforge.train(quiet=True, callbacks=[recorder], **{
            "model.name": "seqgan", "data.source": str(out / "coco-train.txt"), "out": str(out),
            "name": "coco-default", "train.steps": mle_steps})
        mle_cpu = time.process_time() - begin - recorder.scoring
    results = {"mle_cpu_s": mle_cpu, "final": {}}
    results["final"]["mle"] = text_scores(ganforge.load(run_dir), test, n=args.final_n, seed=3, training=train)
    print("mle", mle_steps, "steps", results["final"]["mle"], f"[{mle_cpu:.0f} CPU-s]", flush=True)
    adversarial = Recorder(score, args.every_adv, "seqgan", stages=("adversarial",))
    adversarial.start -= mle_cpu  # the CPU time counts the MLE stage too
    ganforge.train(resume=run_dir, quiet=True, callbacks=[adversarial], **{"train.steps": preset["train"]["steps"]})
    results["curve"] = adversarial.points
    results["train_cpu_s"] = adversarial.points[-1]["cpu_s"]
    results["final"]["seqgan"] = text_scores(ganforge.load(run_dir), test, n=args.final_n, seed=3, training=train)
    half = len(refs) // 2
    results["real"] = bleu_table(refs[:half], refs[half:])
    results["samples"] = [" ".join(s) for s in decode(ganforge.load(run_dir).sample(8, seed=7))]
    results["run"] = str(run_dir)
    print("seqgan", results["final"]["seqgan"], f"[{results['train_cpu_s']:.0f} training CPU-s]", flush=True)
    print("real", results["real"], flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=("oracle", "coco", "default"))
    parser.add_argument("--out", default="runs/bench-text")
    parser.add_argument("--coco", default="../shared/data/text/coco-captions-train.txt")
    parser.add_argument("--test", type=int, default=2000, help="coco: held-out lines")
    parser.add_argument("--pretrain", type=int, default=400, help="MLE pretraining steps (batch 64)")
    parser.add_argument("--extra-mle", type=int, default=100, help="MLE baseline: steps after pretraining")
    parser.add_argument("--d-pretrain", type=int, default=100, help="seqgan: D pretraining steps")
    parser.add_argument("--adv", type=int, default=30, help="seqgan: adversarial steps")
    parser.add_argument("--gumbel-steps", type=int, default=150, help="gumbelgan: adversarial steps")
    parser.add_argument("--d-repeat", type=int, default=3)
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--pg-batch", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=24, help="coco: tokens per caption with <eos>")
    parser.add_argument("--d-scale", type=float, default=0.25, help="D filters x SeqGAN's counts")
    parser.add_argument("--every", type=int, default=100, help="score every N MLE steps")
    parser.add_argument("--every-adv", type=int, default=10, help="score every N seqgan steps (gumbel: 5N)")
    parser.add_argument("--eval-n", type=int, default=1000, help="oracle: sequences per NLL-oracle")
    parser.add_argument("--final-n", type=int, default=1000, help="coco: samples for BLEU / Self-BLEU")
    parser.add_argument("--curve-n", type=int, default=300, help="default: samples per curve point")
    parser.add_argument("--mle-run", help="default: reuse the MLE stage of this earlier default run folder")
    parser.add_argument("--temperatures", type=float, nargs="*", default=[0.7, 0.85, 1.0, 1.2])
    args = parser.parse_args()
    begin = time.process_time()
    results = {"oracle": oracle, "coco": coco, "default": default}[args.experiment](args)
    results["total_cpu_s"] = time.process_time() - begin
    results["args"] = vars(args)
    path = Path(args.out) / f"{args.experiment}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1))
    print(f"wrote {path}; total CPU {results['total_cpu_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
