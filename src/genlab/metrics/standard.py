"""The metrics `genlab evaluate RUN` reports without --metrics, chosen by the data's modality.

Each kind of data has its field's standard numbers: a language model's loss, perplexity and
bits per token/character (metrics.text); every other model its test loss and, for likelihood
models, the NLL in nats and bits/dim (metrics.likelihood). A new modality with numbers of its
own (e.g. audio's bits per sample) adds one entry to `BY_KIND`; the rest use `loss_and_nll`.

Some numbers belong to what a model does rather than to its data: a contract.Restorer
(super-resolution) is judged against the clean images it restores, so it reports PSNR, SSIM and
LPIPS of its output and of its classical baseline (metrics.restoration) besides its test loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from genlab.contract import LikelihoodModel, Restorer


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


def restoration(model: Any, data: Any, split: str, *, batch_size: int, seed: int) -> dict:
    """The test loss, then PSNR / SSIM (Y channel, border cropped) and LPIPS of the model and of
    its baseline on every example of the split (metrics.restoration), with their definitions."""
    from genlab.data.base import batch_inputs
    from genlab.metrics.restoration import DEFINITIONS, restoration_metrics

    result = loss_and_nll(model, data, split, batch_size=batch_size, seed=seed)
    images = []
    for start in range(0, len(data), batch_size):
        indices = torch.arange(start, min(start + batch_size, len(data)))
        images += list(batch_inputs(data.batch(indices)).float())
    found = restoration_metrics(model, images)
    definitions = {k: v for k, v in DEFINITIONS.items() if k in found}
    return {**result, **found, "definitions": definitions}


Metrics = Callable[..., dict]
BY_KIND: dict[str, Metrics] = {"text": language_model}  # DataSpec.kind -> its own numbers


def standard_metrics(
    model: Any, data: Any, split: str, *, batch_size: int = 100, seed: int = 0
) -> dict[str, Any]:
    """eval.json's numbers for `model` on `data` (keys prefixed with the split where they are
    per-split losses)."""
    if isinstance(model, Restorer):
        compute: Metrics = restoration
    else:
        compute = BY_KIND.get(data.spec.kind, loss_and_nll)
    return compute(model, data, split, batch_size=batch_size, seed=seed)
