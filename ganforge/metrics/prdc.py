"""k-NN manifold metrics: improved precision/recall (Kynkäänniemi et al. 2019), density/coverage (Naeem 2020)."""
from __future__ import annotations

import torch
from torch import Tensor

from ganforge.errors import GanforgeError


def knn_radii(features: Tensor, k: int, chunk: int = 2048) -> Tensor:
    """Distance from each sample to its k-th nearest other sample."""
    if len(features) <= k:
        raise GanforgeError(f"precision/recall and density/coverage need more than k={k} samples, "
                            f"got {len(features)}")
    radii = [torch.cdist(features[i:i + chunk], features).kthvalue(k + 1, dim=1).values
             for i in range(0, len(features), chunk)]
    return torch.cat(radii)


def _inside_counts(points: Tensor, centres: Tensor, radii: Tensor, chunk: int = 2048) -> Tensor:
    """For each point, how many balls B(centre, radius) contain it."""
    return torch.cat([(torch.cdist(points[i:i + chunk], centres) <= radii).sum(1)
                      for i in range(0, len(points), chunk)])


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """Precision: share of fakes inside the real manifold; recall: share of reals inside the fake manifold."""
    real, fake = real.float(), fake.float()
    precision = (_inside_counts(fake, real, knn_radii(real, k)) > 0).float().mean().item()
    recall = (_inside_counts(real, fake, knn_radii(fake, k)) > 0).float().mean().item()
    return precision, recall


def density_coverage(real: Tensor, fake: Tensor, k: int = 5) -> tuple[float, float]:
    """Density: mean number of real k-NN balls per fake, over k; coverage: share of real balls holding a fake."""
    real, fake = real.float(), fake.float()
    radii = knn_radii(real, k)
    density = _inside_counts(fake, real, radii).float().sum().item() / (k * len(fake))
    nearest_fake = torch.cat([torch.cdist(real[i:i + 2048], fake).min(1).values for i in range(0, len(real), 2048)])
    coverage = (nearest_fake <= radii).float().mean().item()
    return density, coverage
