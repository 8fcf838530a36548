"""Feature statistics of an image set, cached by (content hash, extractor): on disk for reals, in memory for all."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from ganforge.metrics.extractors import Extractor, cache_dir

KEEP_LIMIT = 1 << 24  # keep features/logits in the statistics when they hold at most this many numbers (64 MB)
MEMORY_ENTRIES = 4


def content_hash(images: Tensor, length: int = 16) -> str:
    """Truncated sha256 of a tensor's shape, dtype and bytes."""
    array = images.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{tuple(array.shape)}{array.dtype}".encode())
    digest.update(array.view(torch.uint8).numpy().data if array.dim() else array.numpy().tobytes())
    return digest.hexdigest()[:length]


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call write(tmp) on a temporary file next to PATH, then move it into place with os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@dataclass
class FeatureStats:
    """Mean and covariance (float64) of an image set's features, plus the features and logits when small."""

    n: int
    mu: Tensor
    sigma: Tensor
    features: Tensor | None = None
    logits: Tensor | None = None

    @classmethod
    def from_features(cls, features: Tensor, logits: Tensor, keep: bool = False) -> FeatureStats:
        """Fit the Gaussian in float64; keep features and logits when asked or when they are small."""
        f = features.double()
        mu = f.mean(0)
        centred = f - mu
        sigma = centred.T @ centred / max(len(f) - 1, 1)
        keep = keep or features.numel() <= KEEP_LIMIT
        return cls(len(f), mu, sigma, features.float() if keep else None,
                   logits.float() if keep or logits.numel() <= KEEP_LIMIT else None)

    def save(self, path: Path, metadata: dict) -> None:
        tensors = {"mu": self.mu, "sigma": self.sigma, "n": torch.tensor(self.n)}
        tensors.update({k: v.contiguous() for k, v in (("features", self.features), ("logits", self.logits))
                        if v is not None})
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"info": json.dumps(metadata)}))

    @classmethod
    def load(cls, path: Path) -> FeatureStats:
        t = load_file(str(path))
        return cls(int(t["n"]), t["mu"], t["sigma"], t.get("features"), t.get("logits"))


def stats_key(data_id: str, extractor: Extractor) -> str:
    """Cache key for one image set seen through one extractor (its weights and input resize included)."""
    text = f"{data_id}|{extractor.name}|{extractor.weights_hash}|{extractor.resize_filter}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


_memory: OrderedDict[str, FeatureStats] = OrderedDict()


def image_stats(images: Tensor, extractor: Extractor, data_id: str | None = None, persist: bool = False,
                keep_samples: bool = False, batch_size: int = 250, directory: str | Path | None = None
                ) -> tuple[FeatureStats, str]:
    """Statistics of IMAGES through EXTRACTOR, computed once per content: memory first, then disk when persist."""
    data_id = data_id or content_hash(images)
    key = stats_key(data_id, extractor)
    path = Path(directory or cache_dir() / "stats") / f"{key}.safetensors"
    stats = _memory.get(key)
    if stats is None and persist and path.exists():
        stats = FeatureStats.load(path)
    if stats is None or (keep_samples and (stats.features is None or stats.logits is None)):
        stats = FeatureStats.from_features(*extractor.extract(images, batch_size), keep=keep_samples)
        if persist:
            stats.save(path, {"data_id": data_id, "extractor": extractor.name, "hash": extractor.weights_hash,
                              "resize_filter": extractor.resize_filter, "n": stats.n})
    _memory[key] = stats
    _memory.move_to_end(key)
    while len(_memory) > MEMORY_ENTRIES:
        _memory.popitem(last=False)
    return stats, data_id
