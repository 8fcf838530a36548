"""Class-based metrics from an extractor's logits: class-distribution KL, diversity, and a mode-collapse report."""
from __future__ import annotations

import math

import torch
from torch import Tensor


def class_histogram(logits: Tensor, num_classes: int) -> Tensor:
    """Share of samples whose arg-max class is each class."""
    return torch.bincount(logits.argmax(1), minlength=num_classes).double() / len(logits)


def class_kl(real_logits: Tensor, fake_logits: Tensor) -> float:
    """KL(real classes || generated classes) over arg-max class histograms, Laplace-smoothed (add one per class)."""
    k = real_logits.shape[1]
    p = (torch.bincount(real_logits.argmax(1), minlength=k).double() + 1) / (len(real_logits) + k)
    q = (torch.bincount(fake_logits.argmax(1), minlength=k).double() + 1) / (len(fake_logits) + k)
    return (p * (p / q).log()).sum().item()


def _subsample(x: Tensor, n: int, seed: int) -> Tensor:
    if len(x) <= n:
        return x
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]]


def mean_pairwise_distance(features: Tensor) -> float:
    """Mean L2 distance over all distinct pairs (nan for fewer than two samples)."""
    n = len(features)
    if n < 2:
        return math.nan
    return (torch.pdist(features.double()).sum() / (n * (n - 1) / 2)).item()


def diversity(features: Tensor, logits: Tensor, max_samples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Mean pairwise feature distance overall, and its mean within each predicted class (classes with 2+ samples)."""
    index = _subsample(torch.arange(len(features)), max_samples, seed)
    features, labels = features[index], logits[index].argmax(1)
    within = [mean_pairwise_distance(features[labels == c]) for c in labels.unique()]
    within = [w for w in within if not math.isnan(w)]
    return mean_pairwise_distance(features), (sum(within) / len(within) if within else math.nan)


def near_duplicate_rate(features: Tensor, threshold: float) -> float:
    """Share of samples whose nearest other sample is closer than `threshold` in feature space."""
    distances = torch.cdist(features.float(), features.float())
    distances.fill_diagonal_(math.inf)
    return (distances.min(1).values < threshold).float().mean().item()


def mode_collapse_report(real_features: Tensor, real_logits: Tensor, fake_features: Tensor, fake_logits: Tensor,
                         max_samples: int = 2000, seed: int = 0) -> dict:
    """Classes covered, largest class share and near-duplicate rate of the fakes, each beside the real value.

    A class counts as covered when it holds at least a quarter of a uniform share (1 / 4K). Near-duplicates are
    pairs closer than half the median real nearest-neighbour distance, measured on equally many real samples.
    """
    k = real_logits.shape[1]
    real_share, fake_share = class_histogram(real_logits, k), class_histogram(fake_logits, k)
    floor = 1 / (4 * k)
    n = min(max_samples, len(real_features), len(fake_features))
    real_sub, fake_sub = _subsample(real_features, n, seed), _subsample(fake_features, n, seed + 1)
    real_nn = torch.cdist(real_sub.float(), real_sub.float()).fill_diagonal_(math.inf).min(1).values
    threshold = 0.5 * real_nn.median().item()
    report = {
        "classes_covered": int((fake_share >= floor).sum()),
        "real_classes_covered": int((real_share >= floor).sum()),
        "largest_class_share": round(fake_share.max().item(), 4),
        "real_largest_class_share": round(real_share.max().item(), 4),
        "near_duplicate_rate": round(near_duplicate_rate(fake_sub, threshold), 4),
        "real_near_duplicate_rate": round(near_duplicate_rate(real_sub, threshold), 4),
    }
    reasons = []
    if report["classes_covered"] < 0.5 * report["real_classes_covered"]:
        reasons.append(f"covers {report['classes_covered']} of {report['real_classes_covered']} classes")
    if report["largest_class_share"] > max(0.5, 2 * report["real_largest_class_share"]):
        reasons.append(f"one class takes {report['largest_class_share']:.0%} of samples")
    if report["near_duplicate_rate"] > max(0.5, 2 * report["real_near_duplicate_rate"]):
        reasons.append(f"{report['near_duplicate_rate']:.0%} of samples are near-duplicates")
    report["collapsed"] = bool(reasons)
    report["reasons"] = reasons
    return report
