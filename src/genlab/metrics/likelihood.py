"""Negative log-likelihood in nats per example, bits per dimension and perplexity.

bits/dim = NLL / (D ln 2) for discrete data (none for continuous vectors), D = the number of values per example (C*H*W for images, the number of
tokens T for text); for text, perplexity = exp(NLL / T), the exponentiated mean per-token NLL in
nats (so bits/token = log2 perplexity). The model's
`log_prob` gives log p(x) of the *discrete* data where the data is discrete (binarized or 8-bit
levels), exactly or as a lower bound; its `bound_name` says which, and we report it.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from genlab.contract import LikelihoodModel, Preparable
from genlab.data.base import Dataset, batch_inputs


@torch.no_grad()
def negative_log_likelihood(
    model: LikelihoodModel, data: Dataset, *, batch_size: int = 100, seed: int = 0
) -> dict[str, Any]:
    """Mean NLL over the whole split, with a seeded generator for any randomness.

    The same generator first prepares the data (e.g. binarizes it), so every evaluation of every
    model sees the same binarized test set for the same seed.
    """
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    total, count, dims = 0.0, 0, 0
    for start in range(0, len(data), batch_size):
        indices = torch.arange(start, min(start + batch_size, len(data)))
        x = batch_inputs(data.batch(indices)).to(device)
        if isinstance(model, Preparable):
            x = model.prepare(x, generator=generator)
        log_p = model.log_prob(x, generator=generator)  # (B,)
        total += float(-log_p.double().sum())
        count += x.shape[0]
        dims = x[0].numel()
    nll = total / max(count, 1)
    kind = getattr(data.spec, "kind", None)
    result = {
        "nll_nats": nll,
        "nll_bound": getattr(model, "bound_name", "exact"),
        "nll_examples": count,
    }
    if kind != "vector":  # bits/dim is for discrete data, not continuous densities (toy2d)
        result["bits_per_dim"] = nll / (dims * math.log(2)) if dims else math.nan
    if kind == "text" and dims:
        result["perplexity"] = perplexity(nll / dims)
    return result


def perplexity(nll_nats_per_token: float) -> float:
    """exp(mean NLL per token in nats); a bound on the NLL gives a bound on the perplexity."""
    return math.exp(nll_nats_per_token) if nll_nats_per_token < 700 else math.inf
