"""Scores of generated text besides BLEU: NLL of held-out text under the generator, NLL-oracle (SeqGAN's synthetic
benchmark), the share of unique samples and the share copied verbatim from the training text; `text_scores`
gathers them (with BLEU-n and Self-BLEU-n) for a trained text model."""

from __future__ import annotations

from pathlib import Path

import torch

from ganforge.metrics.bleu import bleu_table
from ganforge.nn.text import live_mask


@torch.no_grad()
def nll(generator, tokens: torch.Tensor, batch_size: int = 500) -> float:
    """Mean negative log-likelihood per token (nats) of `tokens` (N, L) under `generator`, up to each end."""
    total, count = 0.0, 0.0
    for start in range(0, len(tokens), batch_size):
        chunk = tokens[start:start + batch_size]
        total += float(-generator.log_probs(chunk).sum())
        count += float(live_mask(chunk, generator.eos).sum())
    return total / max(count, 1.0)


def oracle_of(facts: dict):
    """The oracle LSTM a model trained on `--data oracle` learnt from, rebuilt from its checkpoint's facts."""
    from ganforge.errors import GanforgeError
    from ganforge.nn.text import oracle

    recipe = facts.get("oracle")
    if not recipe:
        raise GanforgeError("NLL-oracle needs a model trained on --data oracle (its checkpoint names the oracle)")
    return oracle(recipe["seed"], recipe["vocabulary"], recipe["length"], recipe["hidden"])


def nll_oracle(samples: torch.Tensor, facts: dict) -> float:
    """SeqGAN's NLL-oracle: mean negative log-likelihood per token of generated sequences under the oracle."""
    return nll(oracle_of(facts), samples.cpu())


def unique_share(sentences: list[list[str]]) -> float:
    """Share of distinct sentences among the samples."""
    return len({tuple(s) for s in sentences}) / max(1, len(sentences))


def copied_share(sentences: list[list[str]], training: list[list[str]]) -> float:
    """Share of samples that appear verbatim in the training text (memorisation)."""
    seen = {tuple(s) for s in training}
    return sum(tuple(s) in seen for s in sentences) / max(1, len(sentences))


def decode(samples) -> list[list[str]]:
    """Token samples (ganforge.media.Tokens) as token lists, each up to its end token."""
    end = samples.vocabulary.index(samples.end) if samples.end is not None else None
    out = []
    for row in samples.tensor.tolist():
        row = row[:row.index(end)] if end is not None and end in row else row
        out.append([samples.vocabulary[i] for i in row])
    return out


def text_scores(model, references: str | Path | list[str], n: int = 1000, seed: int = 0,
                training: list[str] | None = None, temperature: float | None = None) -> dict[str, float]:
    """BLEU-2..5 against `references` (a file of sentences, one a line, or the lines), Self-BLEU-2..5, unique and
    copied shares, and the NLL of the references, for `n` samples of a loaded text model (`ganforge.load`)."""
    from ganforge.data.text import Tokenizer, Vocabulary, read_lines

    lines = read_lines(references) if isinstance(references, (str, Path)) else references
    facts, options = model.family.info.facts, model.family.options
    tokenizer = Tokenizer(options.tokenizer, options.lowercase)
    inputs = model.sample_inputs(n, seed)
    if temperature is not None:
        inputs["temperature"] = torch.full((n,), float(temperature))
    generated = decode(model.generate(inputs))
    refs = [tokenizer.split(line) for line in lines]
    scores = bleu_table(generated, refs)
    vocabulary = Vocabulary(facts["vocabulary"])
    held_out, _ = vocabulary.encode(refs, model.family.length)
    scores["nll_test"] = nll(model.generator, held_out.to(model.device))
    scores["unique"] = unique_share(generated)
    if training is not None:
        scores["copied"] = copied_share(generated, [tokenizer.split(line) for line in training])
    return scores


def evaluate_text_run(model, references: str | Path | None, n: int, seed: int) -> dict:
    """`ganforge evaluate` for a text run: with `references` (a text file) the Texygen scores of `n` samples
    (BLEU-2..5, Self-BLEU-2..5, NLL of the references, unique and copied shares, the training text re-read when
    it is still there); a run trained on --data oracle also gets NLL-oracle."""
    from ganforge.errors import GanforgeError

    facts = model.family.info.facts
    scores: dict[str, float] = {}
    if facts.get("oracle"):
        inputs = model.sample_inputs(n, seed)
        scores["nll_oracle"] = nll_oracle(model.generate(inputs).tensor, facts)
    if references is not None:
        training = None
        source = Path(model.config.data.source)
        if source.exists():
            from ganforge.data.text import read_lines

            training = read_lines(source)
        scores |= text_scores(model, references, n=n, seed=seed, training=training)
    if not scores:
        raise GanforgeError("evaluate: a text run needs --references FILE.txt (held-out sentences, one a line) for "
                            "BLEU / Self-BLEU / NLL")
    import nltk

    record = {"protocol": "Texygen: each sample against all references, nltk sentence_bleu weights 1/n, "
                          "SmoothingFunction().method1, averaged; Self-BLEU leave-one-out",
              "bleu_implementation": f"ganforge.metrics.bleu (exact; equal to nltk {nltk.__version__})",
              "n_fake": n, "references": str(references), "seed": seed, "step": model.step}
    return {"scores": scores, "record": record}
