"""ganforge.metrics: FID, KID, IS, precision/recall, density/coverage, class metrics, SSIM/MS-SSIM/PSNR.

Every score comes with an EvalRecord (extractor and weights hash, resize filter, sample counts, reference data,
image format, seed); `compare` refuses to compare scores whose records differ.
"""
from ganforge.metrics.evaluate import METRICS, Evaluator, evaluate_images, scores_from_stats
from ganforge.metrics.extractors import Extractor, default_extractor_for, load_extractor
from ganforge.metrics.fid import frechet_distance
from ganforge.metrics.record import EvalRecord, compare

__all__ = [
    "METRICS", "EvalRecord", "Evaluator", "Extractor", "compare", "default_extractor_for", "evaluate_images",
    "frechet_distance", "load_extractor", "scores_from_stats",
]
