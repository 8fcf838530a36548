"""Evaluate generated images against real ones: features once, cached real statistics, every score with its record."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import Tensor

from ganforge.errors import GanforgeError
from ganforge.metrics.classes import class_kl, diversity, mode_collapse_report
from ganforge.metrics.extractors import Extractor, default_extractor_for, load_extractor
from ganforge.metrics.fid import frechet_distance
from ganforge.metrics.inception_score import inception_score
from ganforge.metrics.kid import kernel_inception_distance
from ganforge.metrics.pixel import PROTOCOL, ms_ssim, psnr, ssim
from ganforge.metrics.prdc import density_coverage, precision_recall
from ganforge.metrics.record import EvalRecord
from ganforge.metrics.stats import FeatureStats, image_stats

FEATURE_METRICS = ("fid", "kid", "is", "pr", "dc", "kl", "diversity", "mode_collapse")
PIXEL_METRICS = ("ssim", "ms_ssim", "psnr")
METRICS = FEATURE_METRICS + PIXEL_METRICS
NEEDS_SAMPLES = {"kid", "pr", "dc", "diversity", "mode_collapse", "is", "kl"}  # per-image features/logits


def parse_metrics(metrics: str | Iterable[str]) -> tuple[str, ...]:
    """Normalise 'fid,kid' or ['fid', 'kid'] and reject unknown names."""
    names = [m.strip().lower().replace("-", "_") for m in (metrics.split(",") if isinstance(metrics, str) else metrics)]
    names = [m for m in names if m]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        given = ", ".join(unknown) or "(none given)"
        raise GanforgeError(f"unknown metric(s) {given}; choose from {', '.join(METRICS)}")
    return tuple(dict.fromkeys(names))


def _check_images(images: Tensor, what: str) -> None:
    if not isinstance(images, Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise GanforgeError(f"{what} images must be a float tensor N,C,H,W in [-1, 1]")
    if images.shape[1] not in (1, 3):
        raise GanforgeError(f"{what} images have {images.shape[1]} channels; expected 1 or 3")
    if len(images) < 2:
        raise GanforgeError(f"{what} images: need at least 2, got {len(images)}")


def resolve_extractor(extractor: str | Path | Extractor | None, images: Tensor, device=None) -> Extractor:
    """The given extractor, or the built-in one matching the images' channels."""
    if extractor is None:
        extractor = default_extractor_for(images.shape[1], images.shape[-1])
    return load_extractor(extractor, device=device or images.device)


def scores_from_stats(real: FeatureStats, fake: FeatureStats, metrics: tuple[str, ...], seed: int = 0) -> dict:
    """Every requested feature metric from the two sets' statistics."""
    scores: dict = {}
    if "fid" in metrics:
        scores["fid"] = frechet_distance(real.mu, real.sigma, fake.mu, fake.sigma)
    if "kid" in metrics:
        scores["kid"], scores["kid_std"] = kernel_inception_distance(real.features, fake.features, seed=seed)
    if "is" in metrics:
        scores["is"], scores["is_std"] = inception_score(fake.logits)
    if "pr" in metrics:
        scores["precision"], scores["recall"] = precision_recall(real.features, fake.features)
    if "dc" in metrics:
        scores["density"], scores["coverage"] = density_coverage(real.features, fake.features)
    if "kl" in metrics:
        scores["class_kl"] = class_kl(real.logits, fake.logits)
    if "diversity" in metrics:
        scores["diversity"], scores["intra_class_diversity"] = diversity(fake.features, fake.logits, seed=seed)
        scores["diversity_real"], scores["intra_class_diversity_real"] = diversity(real.features, real.logits,
                                                                                   seed=seed)
    if "mode_collapse" in metrics:
        scores["mode_collapse"] = mode_collapse_report(real.features, real.logits, fake.features, fake.logits,
                                                       seed=seed)
    return scores


def evaluate_images(
    fake: Tensor,
    real: Tensor,
    metrics: str | Iterable[str] = ("fid", "kid", "pr"),
    extractor: str | Path | Extractor | None = None,
    real_key: str | None = None,
    batch_size: int = 250,
    seed: int = 0,
    reference_split: str = "",
    image_format: str = "tensor",
    cache: bool = True,
) -> dict:
    """Scores of FAKE against REAL (float N,C,H,W in [-1, 1]) plus 'record', the EvalRecord they depend on.

    Real statistics are cached on disk by REAL_KEY (default: a hash of REAL's content); fake statistics in memory.
    """
    metrics = parse_metrics(metrics)
    _check_images(fake, "generated")
    _check_images(real, "real")
    model = resolve_extractor(extractor, fake)
    scores: dict = {}
    feature_metrics = tuple(m for m in metrics if m in FEATURE_METRICS)
    keep = bool(NEEDS_SAMPLES & set(feature_metrics))
    if feature_metrics:
        real_stats, data_id = image_stats(real, model, real_key, persist=cache, keep_samples=keep,
                                          batch_size=batch_size)
        fake_stats, _ = image_stats(fake, model, keep_samples=keep, batch_size=batch_size)
        scores.update(scores_from_stats(real_stats, fake_stats, feature_metrics, seed))
    else:
        data_id = real_key or "paired"
    scores.update(pixel_scores(fake, real, metrics))
    scores["record"] = make_record(model, len(real), len(fake), data_id, reference_split, image_format, seed)
    return scores


def make_record(extractor: Extractor, n_real: int, n_fake: int, reference: str, reference_split: str,
                image_format: str, seed: int) -> EvalRecord:
    """The record of an evaluation through EXTRACTOR."""
    return EvalRecord(extractor=extractor.name, extractor_hash=extractor.weights_hash,
                      resize_filter=extractor.resize_filter, n_real=n_real, n_fake=n_fake, reference=reference,
                      reference_split=reference_split, image_format=image_format, seed=seed)


def pixel_scores(fake: Tensor, real: Tensor, metrics: tuple[str, ...]) -> dict:
    """The paired pixel metrics among METRICS, with the protocol they were measured under."""
    scores: dict = {}
    if "ssim" in metrics:
        scores["ssim"] = ssim(fake, real)
    if "ms_ssim" in metrics:
        scores["ms_ssim"], scores["ms_ssim_scales"] = ms_ssim(fake, real)
    if "psnr" in metrics:
        scores["psnr"] = psnr(fake, real)
    if scores:
        scores["pixel_protocol"] = PROTOCOL
    return scores


class Evaluator:
    """Periodic evaluation during training: real statistics computed once, N samples scored per call."""

    def __init__(self, real: Tensor, metrics: str | Iterable[str] = ("fid",), n: int = 10000,
                 extractor: str | Path | Extractor | None = None, batch_size: int = 250, seed: int = 0,
                 real_key: str | None = None):
        self.metrics = parse_metrics(metrics)
        pixel = [m for m in self.metrics if m in PIXEL_METRICS]
        if pixel:
            raise GanforgeError(f"{', '.join(pixel)} need paired images; the Evaluator scores unpaired samples")
        _check_images(real, "real")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.extractor = resolve_extractor(extractor, real)
        self.keep_samples = bool(NEEDS_SAMPLES & set(self.metrics))
        self.real_stats, self.real_key = image_stats(real, self.extractor, real_key, persist=True,
                                                     keep_samples=self.keep_samples, batch_size=batch_size)
        self.record = make_record(self.extractor, len(real), n, self.real_key, "", "tensor", seed)

    def __call__(self, sample_fn: Callable[[int], Tensor]) -> dict[str, float]:
        """Draw N samples with sample_fn(n) and return the flat float scores (the record is self.record)."""
        with torch.no_grad():
            fake = sample_fn(self.n)
        _check_images(fake, "generated")
        features, logits = self.extractor.extract(fake, self.batch_size)
        fake_stats = FeatureStats.from_features(features, logits, keep=self.keep_samples)
        scores = scores_from_stats(self.real_stats, fake_stats, self.metrics, self.seed)
        flat = {k: float(v) for k, v in scores.items() if isinstance(v, (int, float))}
        if "mode_collapse" in scores:
            report = scores["mode_collapse"]
            flat.update({f"mode_collapse/{k}": float(v) for k, v in report.items() if isinstance(v, (int, float))})
        return flat
