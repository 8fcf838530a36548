"""Text metrics: the fast exact BLEU / Self-BLEU agree with nltk's sentence_bleu (Texygen's protocol), and the
unique / copied shares and NLL scores behave."""

import random
from pathlib import Path

import pytest
import torch

from ganforge.data.text import Tokenizer
from ganforge.metrics.bleu import References, bleu, bleu_table, self_bleu
from ganforge.metrics.text import copied_share, nll, unique_share
from ganforge.nn.text import oracle

nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")

COCO = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "text" / "coco-captions-train.txt"


def sentences(count, seed, words=12, length=(1, 14)):
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(words)]
    return [[rng.choice(vocabulary) for _ in range(rng.randint(*length))] for _ in range(count)]


def reference_bleu(hypothesis, references, n):
    return nltk_bleu.sentence_bleu(references, hypothesis, tuple(1.0 / n for _ in range(n)),
                                   smoothing_function=nltk_bleu.SmoothingFunction().method1)


def test_bleu_equals_nltk_sentence_bleu():
    references, hypotheses = sentences(60, 0), sentences(40, 1, length=(0, 16))
    prepared = References(references, 5)
    for n in (2, 3, 4, 5):
        for hypothesis in hypotheses:
            assert prepared.sentence_bleu(hypothesis, n) == pytest.approx(reference_bleu(hypothesis, references, n),
                                                                          abs=1e-12)
    expected = sum(reference_bleu(h, references, 4) for h in hypotheses) / len(hypotheses)
    assert bleu(hypotheses, references, 4) == pytest.approx(expected, abs=1e-12)


def test_self_bleu_equals_nltk_leave_one_out():
    generated = sentences(30, 2, words=6) + [["w1", "w2", "w3"]] * 3  # duplicates: leave-one-out still finds them
    for n in (2, 5):
        expected = sum(reference_bleu(s, generated[:i] + generated[i + 1:], n)
                       for i, s in enumerate(generated)) / len(generated)
        assert self_bleu(generated, n) == pytest.approx(expected, abs=1e-12)


def test_bleu_on_real_captions():
    """Held-out COCO captions score high BLEU against the rest, shuffled words score lower."""
    if not COCO.exists():
        pytest.skip("../shared/data/text is not available")
    split = Tokenizer().split
    lines = [split(line) for line in COCO.read_text(encoding="utf-8").splitlines()[:600]]
    real, references = lines[:40], lines[40:]
    rng = random.Random(0)
    shuffled = [rng.sample(s, len(s)) for s in real]
    table = bleu_table(real, references, orders=(2, 4))
    assert table["bleu2"] > table["bleu4"] > bleu(shuffled, references, 4)
    assert reference_bleu(real[0], references, 2) == pytest.approx(References(references, 2).sentence_bleu(real[0], 2))


def test_unique_and_copied_shares():
    generated = [["a", "b"], ["a", "b"], ["c"], ["d", "e"]]
    assert unique_share(generated) == 0.75
    assert copied_share(generated, [["a", "b"], ["x"]]) == 0.5


def test_nll_under_a_model():
    model = oracle(0, 30, 5, 8)
    own = model.sample(torch.rand(50, 5, generator=torch.Generator().manual_seed(1)))
    assert nll(model, own, batch_size=7) == pytest.approx(float(model.nll(own)), rel=1e-5)
    assert nll(model, own) < nll(model, torch.randint(0, 30, (50, 5), generator=torch.Generator().manual_seed(2)))
