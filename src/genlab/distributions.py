"""Discrete likelihoods shared by the models: Bernoulli, discretized logistic / Gaussian, and the
discretized logistic mixture of PixelCNN++ (Salimans et al. 2017), all in nats.

Data in [0, 1] on the 8-bit grid k/255 (or {0, 1} for Bernoulli).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

LOG_SCALE_MIN = -7.0  # the floor PixelCNN++ puts on log-scales; keeps bins from becoming spikes

# --------------------------------------------------------------------------------------------
# Likelihoods: log p(x | decoder output), summed over pixels -> (B,)
# --------------------------------------------------------------------------------------------


def bernoulli_log_prob(x: Tensor, logits: Tensor) -> Tensor:
    """log Bernoulli(x; sigmoid(logits)) summed over all but the batch dimension."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def discretized_log_prob(
    x: Tensor, loc: Tensor, log_scale: Tensor, *, kind: Literal["logistic", "gaussian"]
) -> Tensor:
    """log P(level of x) under a logistic or Gaussian integrated over 8-bit bins, per pixel.

    x: data in [0, 1] on the grid k/255. The bin of level k is [x - h, x + h] with
    h = 1/510; level 0 takes (-inf, h] and level 255 takes [1 - h, inf), so the 256 masses sum
    to 1 for any location and scale.
    """
    h = 0.5 / 255.0
    log_scale = log_scale.clamp(min=LOG_SCALE_MIN)
    inv_s = torch.exp(-log_scale)
    a = (x - h - loc) * inv_s  # standardised lower edge
    b = (x + h - loc) * inv_s  # standardised upper edge
    if kind == "logistic":
        # log(sigmoid(b) - sigmoid(a)) = logsigmoid(b) + logsigmoid(-a) + log(1 - e^(a - b))
        log_cdf_b = F.logsigmoid(b)  # log F(b), the whole mass of level 0
        log_sf_a = F.logsigmoid(-a)  # log(1 - F(a)), the whole mass of level 255
        log_mid = log_cdf_b + log_sf_a + torch.log(-torch.expm1(a - b))
    else:
        log_cdf_b = torch.special.log_ndtr(b)
        log_sf_a = torch.special.log_ndtr(-a)
        # Phi(b) - Phi(a) = Phi(-a) - Phi(-b): reflect bins above the mean so both CDF values
        # stay in the lower tail, where log_ndtr is accurate; then log(Phi(hi) - Phi(lo)).
        lo = torch.where(a > 0, -b, a)
        hi = torch.where(a > 0, -a, b)
        log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
        log_mid = log_hi + torch.log((-torch.expm1(log_lo - log_hi)).clamp(min=1e-30))
    log_p = torch.where(x < h, log_cdf_b, torch.where(x > 1 - h, log_sf_a, log_mid))
    return log_p


def logistic_mixture_log_prob(x: Tensor, params: Tensor) -> Tensor:
    """log P(level of x) under a mixture of K discretized logistics, per value.

    x: (B, ...) in [0, 1]; params: (B, 3K, ...) = K mixture logits, K locations (offset by 1/2,
    so 0 means mid-grey) and K log-scales. Returns (B, ...)."""
    logit_pi, loc, log_scale = params.chunk(3, dim=1)
    log_p = discretized_log_prob(x.unsqueeze(1), loc + 0.5, log_scale, kind="logistic")
    return torch.logsumexp(F.log_softmax(logit_pi, dim=1) + log_p, dim=1)


def logistic_mixture_level_log_probs(params: Tensor) -> Tensor:
    """(B, 3K) mixture parameters of one value -> (B, 256) log-probabilities of its levels."""
    levels = torch.arange(256, device=params.device, dtype=params.dtype) / 255
    x = levels.view(1, 256).expand(len(params), 256)  # (B, 256)
    per_level = params.unsqueeze(2).expand(-1, -1, 256)  # (B, 3K, 256)
    return logistic_mixture_log_prob(x, per_level)
