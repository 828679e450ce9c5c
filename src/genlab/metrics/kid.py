"""Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with a cubic kernel.

    k(x, y) = (x.y / d + 1)^3
    MMD^2_u = sum_{i!=j} k(x_i, x_j) / (m(m-1)) + sum_{i!=j} k(y_i, y_j) / (m(m-1))
              - 2 sum_{i,j} k(x_i, y_j) / m^2

averaged over `subsets` random subsets of `subset_size` samples from each set (drawn without
replacement by numpy's RandomState(seed), as torch-fidelity and the MMD-GAN code do); the result
is the mean and the standard deviation over subsets. Unlike FID, the estimator is unbiased, so
KID of two samples of the same distribution is ~0 (it can be slightly negative) at any N.
Defaults follow torch-fidelity (100 subsets of 1000, degree 3, coef0 1, gamma 1/d); the seed is
genlab's evaluation seed (torch-fidelity's default is 2020). Computed in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlab.errors import GenlabError


def polynomial_kernel(x: Tensor, y: Tensor, degree: int = 3, coef0: float = 1.0) -> Tensor:
    """(x y^T / d + coef0)^degree, (m, n)."""
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(x: Tensor, y: Tensor, degree: int = 3, coef0: float = 1.0) -> float:
    """Unbiased MMD^2 between samples x (m, d) and y (m, d) under the polynomial kernel."""
    m = x.shape[0]
    if y.shape[0] != m or m < 2:
        raise GenlabError(f"MMD needs two sets of the same size >= 2, got {m} and {y.shape[0]}")
    k_xx = polynomial_kernel(x, x, degree, coef0)
    k_yy = polynomial_kernel(y, y, degree, coef0)
    k_xy = polynomial_kernel(x, y, degree, coef0)
    sum_xx = k_xx.sum() - k_xx.diagonal().sum()
    sum_yy = k_yy.sum() - k_yy.diagonal().sum()
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def kernel_distance(
    features1: Any,
    features2: Any,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    degree: int = 3,
    coef0: float = 1.0,
) -> dict[str, Any]:
    """KID mean and std over seeded subsets; subset_size is capped at the smaller set's size."""
    f1 = torch.as_tensor(np.asarray(features1), dtype=torch.float64)
    f2 = torch.as_tensor(np.asarray(features2), dtype=torch.float64)
    size = min(subset_size, len(f1), len(f2))
    if size < 2:
        raise GenlabError(f"KID needs at least 2 samples per set, got {len(f1)} and {len(f2)}")
    rng = np.random.RandomState(seed)
    values = np.empty(subsets)
    for i in range(subsets):
        a = f1[torch.from_numpy(rng.choice(len(f1), size, replace=False))]
        b = f2[torch.from_numpy(rng.choice(len(f2), size, replace=False))]
        values[i] = mmd2_unbiased(a, b, degree, coef0)
    return {
        "kid_mean": float(values.mean()),
        "kid_std": float(values.std()),
        "kid_subsets": subsets,
        "kid_subset_size": size,
    }
