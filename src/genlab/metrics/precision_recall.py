"""Improved precision and recall (Kynkaanniemi et al. 2019), k = 3.

Each set of features defines a manifold: the union of balls around its points, each ball's
radius the distance to the point's k-th nearest neighbour in its own set (itself excluded).

    precision = fraction of generated samples inside the real manifold   (quality)
    recall    = fraction of real samples inside the generated manifold   (coverage)

A point is inside when its distance to some centre is <= that centre's radius (NVIDIA's rule).
Distances are computed in float64, a block of rows at a time, so memory stays at
`block` x N however large the sets. The reference uses VGG16 fc2 features of 224x224 images;
genlab also offers its digit features (see docs/metrics.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlab.errors import GenlabError


def _distances(a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distances (len(a), len(b)) in float64, clamped at 0 before the root."""
    squared = a.pow(2).sum(1, keepdim=True) - 2 * a @ b.T + b.pow(2).sum(1)[None, :]
    return squared.clamp_min(0).sqrt()


def knn_radii(features: Tensor, k: int = 3, block: int = 1000) -> Tensor:
    """Distance of each point to its k-th nearest neighbour in the same set (self excluded)."""
    if len(features) <= k:
        raise GenlabError(
            f"k={k} nearest neighbours need more than {k} samples, got {len(features)}"
        )
    radii = []
    for start in range(0, len(features), block):
        d = _distances(features[start : start + block], features)  # (b, N)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # the 1st smallest is the point itself
    return torch.cat(radii)


def coverage(centres: Tensor, radii: Tensor, queries: Tensor, block: int = 1000) -> float:
    """Fraction of `queries` within radius of at least one centre."""
    inside = []
    for start in range(0, len(queries), block):
        d = _distances(queries[start : start + block], centres)  # (b, N_centres)
        inside.append((d <= radii[None, :]).any(1))
    return float(torch.cat(inside).double().mean())


def precision_recall(real: Any, generated: Any, *, k: int = 3, block: int = 1000) -> dict[str, Any]:
    """Precision and recall of `generated` features against `real` features."""
    r = torch.as_tensor(np.asarray(real), dtype=torch.float64)
    g = torch.as_tensor(np.asarray(generated), dtype=torch.float64)
    if r.dim() != 2 or g.dim() != 2 or r.shape[1] != g.shape[1]:
        raise GenlabError(
            f"features must be (N, D) with equal D, got {tuple(r.shape)}, {tuple(g.shape)}"
        )
    precision = coverage(r, knn_radii(r, k, block), g, block)
    recall = coverage(g, knn_radii(g, k, block), r, block)
    return {"precision": precision, "recall": recall, "pr_k": k}
