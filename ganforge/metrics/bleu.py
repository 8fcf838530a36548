"""BLEU and Self-BLEU of generated text, as the Texygen benchmark computes them (Zhu et al. 2018): every generated
sentence is scored with nltk's `sentence_bleu` against *all* reference sentences (uniform weights over 1..n-grams,
`SmoothingFunction().method1`), and the scores are averaged. Self-BLEU scores each generated sentence against all
the other generated ones (leave-one-out; Texygen's "fast" variant, which is the one that is not trivially 1).

nltk's `sentence_bleu` recounts every reference's n-grams for every hypothesis: about a second per sentence against
10,000 references. `References` counts them once (the largest count of each n-gram in any one reference, and the
second largest for leave-one-out), then scores each sentence with the same formulas, in the same order, as nltk
3.10 (clipped counts, closest reference length with ties to the shorter, brevity penalty, method1's epsilon 0.1);
tests/test_text_metrics.py checks it against nltk itself.
"""

from __future__ import annotations

import math
from collections import Counter

EPSILON = 0.1  # nltk SmoothingFunction().method1's epsilon


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(tokens[i:] for i in range(n))))


class References:
    """Reference sentences (token lists) prepared for fast exact BLEU against all of them, up to `max_n`-grams."""

    def __init__(self, sentences: list[list[str]], max_n: int = 5):
        self.max_n = max_n
        # order -> n-gram -> (largest count in one sentence, that sentence's index, second largest count)
        self.best: list[dict[tuple, tuple[int, int, int]]] = [{} for _ in range(max_n + 1)]
        for index, sentence in enumerate(sentences):
            for n in range(1, max_n + 1):
                table = self.best[n]
                for gram, count in Counter(ngrams(sentence, n)).items():
                    first, owner, second = table.get(gram, (0, -1, 0))
                    if count > first:
                        table[gram] = (count, index, first)
                    elif count > second:
                        table[gram] = (first, owner, count)
        self.lengths = Counter(len(s) for s in sentences)
        self.sentences = sentences

    def _max_count(self, gram: tuple, n: int, exclude: int | None) -> int:
        first, owner, second = self.best[n].get(gram, (0, -1, 0))
        return second if owner == exclude else first

    def _closest_length(self, hyp_len: int, exclude: int | None) -> int:
        lengths = self.lengths
        if exclude is not None:
            lengths = lengths.copy()
            lengths[len(self.sentences[exclude])] -= 1
        return min((length for length, count in lengths.items() if count > 0),
                   key=lambda length: (abs(length - hyp_len), length))

    def sentence_bleu(self, hypothesis: list[str], n: int, exclude: int | None = None) -> float:
        """nltk's sentence_bleu(all references, hypothesis, uniform weights up to n, method1); `exclude`: leave
        out reference number `exclude` (Self-BLEU)."""
        if n > self.max_n:
            raise ValueError(f"these references were prepared up to {self.max_n}-grams, not {n}")
        numerators, denominators = [], []
        for order in range(1, n + 1):
            counts = Counter(ngrams(hypothesis, order))
            numerators.append(sum(min(c, self._max_count(g, order, exclude)) for g, c in counts.items()))
            denominators.append(max(1, sum(counts.values())))
        if numerators[0] == 0:
            return 0.0
        hyp_len = len(hypothesis)
        closest = self._closest_length(hyp_len, exclude)
        penalty = 1 if hyp_len > closest else math.exp(1 - closest / hyp_len)
        precisions = [num / den if num else (num + EPSILON) / den for num, den in zip(numerators, denominators)]
        weight = 1.0 / n
        return penalty * math.exp(math.fsum(weight * math.log(p) for p in precisions if p > 0))


def bleu(hypotheses: list[list[str]], references: list[list[str]] | References, n: int = 4) -> float:
    """Mean BLEU-n of each hypothesis (a token list) against all references (Texygen's protocol)."""
    refs = references if isinstance(references, References) else References(references, n)
    return sum(refs.sentence_bleu(h, n) for h in hypotheses) / max(1, len(hypotheses))


def self_bleu(sentences: list[list[str]], n: int = 4, prepared: References | None = None) -> float:
    """Mean BLEU-n of each sentence against all the others (diversity: lower is more varied)."""
    refs = prepared or References(sentences, n)
    return sum(refs.sentence_bleu(s, n, exclude=i) for i, s in enumerate(sentences)) / max(1, len(sentences))


def bleu_table(hypotheses: list[list[str]], references: list[list[str]], orders=(2, 3, 4, 5)) -> dict[str, float]:
    """BLEU-n against the references and Self-BLEU-n of the hypotheses for each n in `orders`."""
    refs, own = References(references, max(orders)), References(hypotheses, max(orders))
    table = {}
    for n in orders:
        table[f"bleu{n}"] = bleu(hypotheses, refs, n)
    for n in orders:
        table[f"self_bleu{n}"] = self_bleu(hypotheses, n, own)
    return table
