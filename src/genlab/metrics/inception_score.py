"""Inception Score (Salimans et al. 2016), as torch-fidelity computes it.

    IS = exp( E_x KL( p(y|x) || p(y) ) ),   p(y) = E_x p(y|x)

Protocol: the classifier's logits (for Inception: the 1008 logits *without* the fc bias, as the
original TF code fed them to its softmax), a seeded shuffle of the N samples, 10 splits
(split i = rows [i N / 10, (i+1) N / 10)), softmax and log-softmax in float64, one score per
split; the result is their mean and standard deviation.
IS = 1 when every sample gets the same prediction, and K when predictions are confident one-hot
and balanced over K classes. Pitfalls: it ignores the real data entirely, rewards one perfect
image per class (no intra-class diversity), and depends on N and the number of splits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genlab.errors import GenlabError


def inception_score(
    logits: Any, *, splits: int = 10, shuffle: bool = True, seed: int = 0
) -> dict[str, Any]:
    """IS mean and std over `splits` from logits (N, K)."""
    x = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    n = x.shape[0]
    if x.dim() != 2 or n < splits:
        raise GenlabError(f"the Inception Score needs at least {splits} predictions, got {n}")
    if shuffle:
        x = x[torch.from_numpy(np.random.RandomState(seed).permutation(n))]
    log_p = torch.log_softmax(x, dim=1)  # (N, K)
    p = log_p.exp()
    scores = []
    for i in range(splits):
        part_p, part_log_p = (
            p[i * n // splits : (i + 1) * n // splits],
            log_p[i * n // splits : (i + 1) * n // splits],
        )
        log_q = part_p.mean(0, keepdim=True).log()  # log p(y) within the split
        kl = torch.where(part_p > 0, part_p * (part_log_p - log_q), 0.0).sum(1)  # (n_i,)
        scores.append(float(kl.mean().exp()))
    return {
        "is_mean": float(np.mean(scores)),
        "is_std": float(np.std(scores)),
        "is_splits": splits,
    }
