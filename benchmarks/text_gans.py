"""Text GAN benchmarks: the SeqGAN oracle experiment and COCO captions, MLE vs SeqGAN vs the Gumbel-softmax GAN.

    OMP_NUM_THREADS=1 python benchmarks/text_gans.py oracle [--out runs/bench-text]
    OMP_NUM_THREADS=1 python benchmarks/text_gans.py coco [--coco ../shared/data/text/coco-captions-train.txt]

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
import time
from pathlib import Path

import torch

import ganforge
from ganforge.metrics.bleu import bleu_table
from ganforge.metrics.text import decode, nll, nll_oracle, text_scores, unique_share


class Recorder:
    """A trainer callback: the score every `every` steps, with the training CPU time so far (scoring excluded)."""

    def __init__(self, score, every: int, label: str):
        self.score, self.every, self.label = score, every, label
        self.start = time.process_time()
        self.scoring = 0.0
        self.points: list[dict] = []

    def __call__(self, trainer) -> None:
        if trainer.step % self.every and trainer.step != trainer.config.train.steps:
            return
        begin = time.process_time()
        value = self.score(trainer)
        self.scoring += time.process_time() - begin
        cpu = time.process_time() - self.start - self.scoring
        self.points.append({"step": trainer.step, "stage": trainer.family.stage, "score": value, "cpu_s": cpu})
        print(f"{self.label} step {trainer.step} ({trainer.family.stage}): {value:.4f}  [{cpu:.0f} CPU-s]", flush=True)


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
    lines = [line for line in Path(args.coco).read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(0).shuffle(lines)
    test, train = lines[:args.test], lines[args.test:]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "coco-train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
    (out / "coco-test.txt").write_text("\n".join(test) + "\n", encoding="utf-8")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=("oracle", "coco"))
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
    parser.add_argument("--temperatures", type=float, nargs="*", default=[0.7, 0.85, 1.0, 1.2])
    args = parser.parse_args()
    begin = time.process_time()
    results = (oracle if args.experiment == "oracle" else coco)(args)
    results["total_cpu_s"] = time.process_time() - begin
    results["args"] = vars(args)
    path = Path(args.out) / f"{args.experiment}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1))
    print(f"wrote {path}; total CPU {results['total_cpu_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
