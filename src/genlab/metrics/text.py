"""Language-model metrics: validation loss, perplexity, bits per token and bits per character.

Over a split of non-overlapping windows (the text datasets' evaluation view), the model's
next-token cross-entropy is summed over every target token:

    loss          = total nats / tokens                 (the training loss, nats per token)
    perplexity    = exp(loss)
    bits/token    = loss / ln 2
    bits/char     = total nats / (characters ln 2)      (characters of the decoded targets)

Bits per character is the number to compare across tokenizers: a BPE model has fewer, harder
tokens than a character model of the same text, so its per-token loss is not comparable, but the
total information per character is. Only the model's `logits(ids)` and the dataset's
`tokenizer` are used (no specific model). A vocabulary of something other than text (music
events, a tokenizers.FileTokenizer) has no characters: its loss is in nats per event.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from genlab.tokenizers import FileTokenizer


@torch.no_grad()
def language_model_metrics(
    model: Any, data: Any, *, batch_size: int = 32, max_batches: int = 0
) -> dict[str, float]:
    """Metrics of `model` on the windows of `data` (each (x, y) with y = x shifted by one), in
    order; `max_batches` > 0 stops early (the windows seen are the first ones)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, tokens, targets = 0.0, 0, []
    try:
        for b, start in enumerate(range(0, len(data), batch_size)):
            if max_batches and b >= max_batches:
                break
            x, y = data.batch(torch.arange(start, min(start + batch_size, len(data))))
            logits = model.logits(x.to(device))  # (B, T, V)
            nats = F.cross_entropy(
                logits.flatten(0, 1).float(), y.to(device).flatten(), reduction="sum"
            )
            total += float(nats)
            tokens += y.numel()
            targets.extend(y.flatten().tolist())
    finally:
        model.train(was_training)
    if tokens == 0:
        raise ValueError("no tokens to evaluate")
    loss = total / tokens
    result = {
        "loss": loss,
        "perplexity": math.exp(loss),
        "bits_per_token": loss / math.log(2),
        "tokens": tokens,
    }
    tokenizer = data.spec.extra.get("tokenizer")
    if tokenizer is not None and not isinstance(tokenizer, FileTokenizer):  # text, not events
        characters = len(tokenizer.decode(targets))
        if characters:
            result["bits_per_char"] = total / (characters * math.log(2))
            result["characters"] = characters
    return result
