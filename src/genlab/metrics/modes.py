"""Mode coverage of a Gaussian mixture: the standard test of mode collapse on 2-D toys.

The protocol of the mode-collapse literature (Metz et al. 2017, "Unrolled GANs"; Srivastava et
al. 2017, "VEEGAN"; Lin et al. 2018, "PacGAN"): draw samples from the generator and assign each
to its nearest mode centre.
- a sample is *high quality* if it lies within 3 standard deviations of its nearest centre;
- a mode is *covered* if at least `min_count` high-quality samples fall on it (PacGAN uses 20
  of 2500 samples for 25 modes: a fifth of the 100 a perfect generator puts there; we keep
  that fraction: min_count = 0.2 * n / modes by default).
`kl_modes` adds the KL divergence from the uniform mode distribution to the generated one
(over high-quality samples), which PacGAN reports as "reverse KL".
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def eight_gaussian_centres() -> Tensor:
    """The centres of genlab's toy2d:8gaussians (radius 4 / 1.414) and its std (0.5 / 1.414)."""
    angles = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
    return 4 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1) / 1.414


EIGHT_GAUSSIAN_STD = 0.5 / 1.414


def mode_coverage(
    samples: Tensor, centres: Tensor, std: float, *, min_count: int | None = None
) -> dict[str, float]:
    """Modes covered, the fraction of high-quality samples and the KL to uniform mode use."""
    samples = samples.detach().double().cpu()
    centres = centres.double()
    n, k = len(samples), len(centres)
    min_count = max(1, round(0.2 * n / k)) if min_count is None else min_count
    distances = torch.cdist(samples, centres)  # (N, K)
    nearest, which = distances.min(dim=1)
    good = nearest <= 3 * std
    counts = torch.bincount(which[good], minlength=k).numpy()
    covered = int((counts >= min_count).sum())
    p = counts / max(counts.sum(), 1)
    kl = float(np.sum(np.where(p > 0, p * np.log(np.maximum(p, 1e-300) * k), 0.0)))
    return {
        "modes_covered": covered,
        "modes": k,
        "high_quality": float(good.double().mean()),
        "kl_modes": kl if counts.sum() > 0 else math.inf,
        "min_count": min_count,
    }
