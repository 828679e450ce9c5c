"""The metrics `genlab evaluate RUN` reports without --metrics, chosen by the data's modality.

Each kind of data has its field's standard numbers: a language model's loss, perplexity and
bits per token/character (metrics.text); every other model its test loss and, for likelihood
models, the NLL in nats and bits/dim (metrics.likelihood); an audio model (contract.AudioModel)
also its bits per sample beside two baselines fitted on the run's training split (metrics.audio).
A new modality with numbers of its own adds one entry to `BY_KIND`; the rest use `loss_and_nll`.

Every entry takes `reference`, a loader of the run's training split (None when there is none):
numbers that need the training data (audio's baselines) read it; the others leave it.

Some numbers belong to what a model does rather than to its data: a contract.Restorer
(super-resolution) is judged against the clean images it restores, so it reports PSNR, SSIM and
LPIPS of its output and of its classical baseline (metrics.restoration) besides its test loss;
a contract.Reconstructor (MusicVAE) its reconstruction accuracies.

And some numbers belong to the data's vocabulary: when its tokenizer measures token streams in
their own domain (tokenizers.SequenceStatistics: music events have the music-theory statistics
of their melody), `sequence_statistics` compares the model's samples with the split's windows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from genlab.contract import AudioModel, LikelihoodModel, Reconstructor, Restorer, TokenGenerator
from genlab.metrics.returns import episode_returns
from genlab.tokenizers import SequenceStatistics

Reference = Callable[[], Any] | None  # loads the run's training split (a Dataset)


def language_model(
    model: Any, data: Any, split: str, *, batch_size: int, seed: int, reference: Reference = None
) -> dict:
    """Loss, perplexity, bits per token and per character over the split's windows (a
    TokenGenerator's); another model of token data gets the test loss and NLL of every model."""
    from genlab.metrics.text import language_model_metrics

    if not isinstance(model, TokenGenerator):
        return loss_and_nll(model, data, split, batch_size=batch_size, seed=seed)
    found = language_model_metrics(model, data, batch_size=batch_size)
    return {f"{split}_{k}": v for k, v in found.items()}


def loss_and_nll(
    model: Any, data: Any, split: str, *, batch_size: int, seed: int, reference: Reference = None
) -> dict:
    """The mean of the model's loss terms, and the likelihood of a LikelihoodModel."""
    from genlab.metrics.likelihood import negative_log_likelihood
    from genlab.training.loop import evaluate_loss

    where = next(model.parameters()).device
    loss = evaluate_loss(model, data, batch_size=batch_size, device=where, seed=seed)
    result: dict[str, Any] = {f"{split}_{k}": v for k, v in loss.items()}
    if isinstance(model, LikelihoodModel):
        result.update(negative_log_likelihood(model, data, batch_size=batch_size, seed=seed))
    return result


def restoration(
    model: Any, data: Any, split: str, *, batch_size: int, seed: int, reference: Reference = None
) -> dict:
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


def reconstruction(
    model: Any, data: Any, split: str, *, batch_size: int, seed: int, reference: Reference = None
) -> dict:
    """The test loss and NLL, then a Reconstructor's reconstruction accuracies, each the mean
    over the split's examples (`reconstruction_<name>`)."""
    result = loss_and_nll(model, data, split, batch_size=batch_size, seed=seed)
    where = next(model.parameters()).device
    sums: dict[str, float] = {}
    model.eval()
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            batch = data.batch(torch.arange(start, min(start + batch_size, len(data))))
            batch = (
                tuple(t.to(where) for t in batch) if isinstance(batch, tuple) else batch.to(where)
            )
            for name, values in model.reconstruction_accuracy(batch).items():
                sums[name] = sums.get(name, 0.0) + float(values.sum())
    return {**result, **{f"reconstruction_{k}": v / len(data) for k, v in sums.items()}}


def audio(
    model: Any, data: Any, split: str, *, batch_size: int, seed: int, reference: Reference = None
) -> dict:
    """The test loss, then an AudioModel's bits per sample given each example's conditioning
    (its `conditional_log_prob`: no label-free marginal, which costs a pass per class and does
    not exist for a model that reads a feature sequence) and, with `reference`, the unigram and
    linear-prediction baselines on the same codes (metrics.audio). Another model of audio data
    gets the test loss and NLL of every model."""
    from genlab.metrics.audio import audio_metrics
    from genlab.training.loop import evaluate_loss

    if not isinstance(model, AudioModel):
        return loss_and_nll(model, data, split, batch_size=batch_size, seed=seed)
    where = next(model.parameters()).device
    loss = evaluate_loss(model, data, batch_size=batch_size, device=where, seed=seed)
    found = audio_metrics(model, data, reference, batch_size=batch_size, seed=seed)
    return {**{f"{split}_{k}": v for k, v in loss.items()}, **found}


def sequence_statistics(
    model: Any, data: Any, split: str, tokenizer: SequenceStatistics, *, n: int, seed: int
) -> dict[str, float]:
    """The tokenizer's statistics of n samples of the model (`model.sample(n)`, seeded) and of
    the split's first n windows: `statistics_samples_<name>` and `statistics_<split>_<name>`
    (for music: notes in key, repeated notes, leaps, resolved leaps, range, density, ...)."""
    where = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        samples = model.sample(n, generator=torch.Generator(device=where).manual_seed(seed))
    _, windows = data.batch(torch.arange(min(n, len(data))))  # token data: (x, y), y the window
    found = {"samples": tokenizer.statistics(samples.cpu()), split: tokenizer.statistics(windows)}
    return {f"statistics_{who}_{k}": v for who, stats in found.items() for k, v in stats.items()}


Metrics = Callable[..., dict]
# DataSpec.kind -> its own numbers
BY_KIND: dict[str, Metrics] = {
    "text": language_model,
    "audio": audio,
    "environment": episode_returns,  # an agent: the returns of its greedy episodes
}


def standard_metrics(
    model: Any,
    data: Any,
    split: str,
    *,
    batch_size: int = 100,
    seed: int = 0,
    reference: Reference = None,
    statistics_n: int = 256,
) -> dict[str, Any]:
    """eval.json's numbers for `model` on `data` (keys prefixed with the split where they are
    per-split losses). `reference()` loads the run's training split, for numbers fitted on it
    (genlab evaluate passes it; None: those numbers are left out). `statistics_n`: the samples
    and windows whose sequence statistics are compared (when the tokenizer has them)."""
    if isinstance(model, Restorer):
        compute: Metrics = restoration
    elif isinstance(model, Reconstructor):
        compute = reconstruction
    else:
        compute = BY_KIND.get(data.spec.kind, loss_and_nll)
    result = compute(model, data, split, batch_size=batch_size, seed=seed, reference=reference)
    tokenizer = data.spec.extra.get("tokenizer")
    if isinstance(tokenizer, SequenceStatistics) and statistics_n > 0:
        result |= sequence_statistics(model, data, split, tokenizer, n=statistics_n, seed=seed)
    return result
