"""Inception Score (Salimans et al. 2016): exp E_x KL(p(y|x) || p(y)), mean and std over splits."""
from __future__ import annotations

from torch import Tensor


def inception_score(logits: Tensor, splits: int = 10) -> tuple[float, float]:
    """IS from class logits, split in order into `splits` groups (no shuffling: the result is deterministic)."""
    log_prob = logits.double().log_softmax(dim=1)
    scores = []
    for chunk in log_prob.chunk(min(splits, len(log_prob))):
        log_marginal = chunk.exp().mean(0).log()
        kl = (chunk.exp() * (chunk - log_marginal)).sum(1).mean()
        scores.append(kl.exp().item())
    mean = sum(scores) / len(scores)
    std = (sum((s - mean) ** 2 for s in scores) / (len(scores) - 1)) ** 0.5 if len(scores) > 1 else 0.0
    return mean, std
