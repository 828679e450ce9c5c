"""Negative log-likelihood in nats per example, bits per dimension and perplexity.

bits/dim = NLL / (D ln 2) for discrete data (none for continuous vectors: the data's
`spec.modality.discrete`), D = the number of values per example (C*H*W for images, the number of
tokens T for text); for token sequences (`spec.modality.tokens`), perplexity = exp(NLL / T), the
exponentiated mean per-token NLL in nats (so bits/token = log2 perplexity). The model's
`log_prob` gives log p(x) of the *discrete* data where the data is discrete (binarized or 8-bit
levels), exactly or as a lower bound; its `bound_name` says which, and we report it.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from genlab.contract import LikelihoodModel, Preparable
from genlab.data.base import Dataset, batch_inputs
from genlab.metrics.returns import TERMS as RETURN_TERMS


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
    modality = data.spec.modality
    result = {
        "nll_nats": nll,
        "nll_bound": getattr(model, "bound_name", "exact"),
        "nll_examples": count,
    }
    if modality.discrete:  # bits/dim is for discrete data, not continuous densities (toy2d)
        result["bits_per_dim"] = nll / (dims * math.log(2)) if dims else math.nan
    if modality.tokens and dims:
        result["perplexity"] = perplexity(nll / dims)
    return result


def perplexity(nll_nats_per_token: float) -> float:
    """exp(mean NLL per token in nats); a bound on the NLL gives a bound on the perplexity."""
    return math.exp(nll_nats_per_token) if nll_nats_per_token < 700 else math.inf


# --- what each key of eval.json means -------------------------------------------------------
# Keys of `negative_log_likelihood` and of the language-model metrics (metrics/text.py).
_LIKELIHOOD = {
    "nll_nats": (
        "-log p(x) in nats per example (all C*H*W values, or all T tokens, together), mean over "
        "the split, from model.log_prob(x) on the prepared data (binarized with the seed): "
        "the label-free likelihood (a class-conditional model's marginal over its classes, "
        "log (1/K) sum_y p(x | y)); exact or a bound, as nll_bound says"
    ),
    "bits_per_dim": "nll_nats / (D ln 2), D values per example: bits per value",
    "perplexity": "exp(nll_nats / T), T tokens per example",
    "nll_bound": "whether log_prob, hence nll_nats, is exact or a bound (and which)",
    "nll_examples": "examples in the mean of nll_nats",
}
_LANGUAGE = {
    "loss": "next-token cross-entropy in nats per token, over every target token of the split",
    "perplexity": "exp(loss): the exponentiated nats per token",
    "bits_per_token": "loss / ln 2",
    "bits_per_char": "total nats / (characters ln 2): comparable across tokenizers",
    "tokens": "target tokens evaluated",
    "characters": "characters of the decoded targets",
}
# The conventional terms of model.loss (the rest are the model's own: see its docs).
_LOSS_TERMS = {
    **RETURN_TERMS,  # an agent's greedy episodes (metrics.returns)
    "loss": (
        "the training objective, model.loss(batch)['loss'], mean over the split's examples (what "
        "training logs as val_loss); its unit is the model's, e.g. nats per value for "
        "likelihood models"
    ),
    "nll": (
        "the 'nll' term of model.loss, mean over the split: nats per example. It sees each "
        "example's label, so for a class-conditional model it is -log p(x | y), not nll_nats's "
        "label-free -log p(x); for an unconditional model it is nll_nats again (same prepared "
        "data from the same seed), up to float32 rounding"
    ),
    "bits_per_dim": "the 'bits_per_dim' term of model.loss: {split}_nll / (D ln 2)",
}


def key_definitions(result: dict[str, Any], split: str) -> dict[str, str]:
    """A one-line definition, with its unit, of every number in an eval.json `result`.

    `{split}_<term>` keys are means over the split of model.loss's terms, or, for language
    models, the metrics of metrics/text.py; unprefixed likelihood keys come from
    `negative_log_likelihood`; sample metrics describe themselves under "sample_metrics".
    """
    text_model = f"{split}_bits_per_token" in result
    definitions: dict[str, str] = {}
    for key, value in result.items():
        if key in _LIKELIHOOD:
            definitions[key] = _LIKELIHOOD[key]
        elif key.startswith(f"{split}_") and isinstance(value, int | float):
            term = key[len(split) + 1 :]
            if text_model and term in _LANGUAGE:
                definitions[key] = _LANGUAGE[term]
            else:
                definitions[key] = _LOSS_TERMS.get(
                    term,
                    f"the '{term}' term of model.loss, mean over the split's examples "
                    f"(training logs it as val_{term}); see the model's documentation",
                ).replace("{split}", split)
    return definitions
