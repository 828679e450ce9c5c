"""The metrics `genlab evaluate RUN` reports without --metrics, chosen by the data's modality.

Each kind of data has its field's standard numbers: a language model's loss, perplexity and
bits per token/character (metrics.text); every other model its test loss and, for likelihood
models, the NLL in nats and bits/dim (metrics.likelihood). A new modality with numbers of its
own (e.g. audio's bits per sample) adds one entry to `BY_KIND`; the rest use `loss_and_nll`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genlab.contract import LikelihoodModel


def language_model(model: Any, data: Any, split: str, *, batch_size: int, seed: int) -> dict:
    """Loss, perplexity, bits per token and per character over the split's windows."""
    from genlab.metrics.text import language_model_metrics

    found = language_model_metrics(model, data, batch_size=batch_size)
    return {f"{split}_{k}": v for k, v in found.items()}


def loss_and_nll(model: Any, data: Any, split: str, *, batch_size: int, seed: int) -> dict:
    """The mean of the model's loss terms, and the likelihood of a LikelihoodModel."""
    from genlab.metrics.likelihood import negative_log_likelihood
    from genlab.training.loop import evaluate_loss

    where = next(model.parameters()).device
    loss = evaluate_loss(model, data, batch_size=batch_size, device=where, seed=seed)
    result: dict[str, Any] = {f"{split}_{k}": v for k, v in loss.items()}
    if isinstance(model, LikelihoodModel):
        result.update(negative_log_likelihood(model, data, batch_size=batch_size, seed=seed))
    return result


Metrics = Callable[..., dict]
BY_KIND: dict[str, Metrics] = {"text": language_model}  # DataSpec.kind -> its own numbers


def standard_metrics(
    model: Any, data: Any, split: str, *, batch_size: int = 100, seed: int = 0
) -> dict[str, Any]:
    """eval.json's numbers for `model` on `data` (keys prefixed with the split where they are
    per-split losses)."""
    compute = BY_KIND.get(data.spec.kind, loss_and_nll)
    return compute(model, data, split, batch_size=batch_size, seed=seed)
