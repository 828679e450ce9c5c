"""What every language model shares: the next-token loss, sampling and generation.

A language model factorizes a token sequence by the chain rule, p(x) = prod_t p(x_t | x_<t), and
is trained by teacher forcing: the data gives windows x (B, T) and their targets y = x shifted by
one token, and the loss is the mean cross-entropy of the next-token logits (nats per token).

A model implements one method, `step(ids, cache) -> (logits, cache)`: the logits (B, T, V) of the
token after each of the T new tokens, given what `cache` holds (None: nothing), and the new cache
(GPT: keys and values; RNNs: the hidden state). Everything else is built on it here:
- `logits(ids)`: the full forward pass (no cache), for training and evaluation;
- `generate(prompt_ids, ...)`: streaming generation with temperature, top-k, top-p, repetition
  penalty and a seed (genlab.text.generation), cached or not (`use_cache`), both giving the
  same tokens;
- `sample(n)`: the contract's sampler, n sequences of `block_size` new tokens after token 0
  (the newline in a character vocabulary sorted by code point).
`tokenizer` is attached from the data when training and from the run's tokenizer.json when
loading (genlab.api), so a loaded model can encode prompts and decode what it generates.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.text.generation import GenerationConfig, generate_ids


class LanguageModel(nn.Module):
    config: Any
    block_size: int | None  # the longest context the model reads (None: unbounded)
    tokenizer: Any = None
    data_kinds = ("text",)  # DataSpec kinds (contract.py)

    def step(self, ids: Tensor, cache: Any = None) -> tuple[Tensor, Any]:
        raise NotImplementedError

    def logits(self, ids: Tensor) -> Tensor:
        """ids (B, T) -> next-token logits (B, T, V), no cache."""
        return self.step(ids, None)[0]

    def loss(self, batch: Any) -> dict[str, Tensor]:
        x, y = batch  # (B, T) each: y is x shifted by one token
        logits = self.logits(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())  # nats per token
        return {"loss": loss, "bits_per_token": loss.detach() / math.log(2)}

    def generate(
        self,
        prompt_ids: Tensor,
        *,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        **settings: Any,
    ) -> Iterator[Tensor]:
        """Yield the next token (B,) at a time after prompt_ids (B, T0); `settings` are
        GenerationConfig fields (max_new_tokens, temperature, top_k, top_p, ...)."""
        config = GenerationConfig(**settings)  # generate_ids validates it
        return generate_ids(self, prompt_ids, config, generator=generator, use_cache=use_cache)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        max_new_tokens: int | None = None,
        temperature: float = 1.0,
    ) -> Tensor:
        """n sequences (n, max_new_tokens) of generated token ids after token 0 (default length:
        the training window, `config.block_size`)."""
        device = next(self.parameters()).device
        prompt = torch.zeros(n, 1, dtype=torch.long, device=device)
        length = self.config.block_size if max_new_tokens is None else max_new_tokens
        tokens = list(
            self.generate(
                prompt, generator=generator, max_new_tokens=length, temperature=temperature
            )
        )
        if not tokens:
            return torch.zeros(n, 0, dtype=torch.long, device=device)
        return torch.stack(tokens, dim=1)

    def samples_to_text(self, samples: Tensor) -> list[str]:
        """Token ids (n, T) -> n strings (the tokenizer's decode; ids as numbers without one)."""
        rows = samples.tolist()
        if self.tokenizer is None:
            return [" ".join(map(str, row)) for row in rows]
        return [self.tokenizer.decode(row) for row in rows]
