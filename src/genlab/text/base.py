"""What every language model shares: the next-token loss, sampling, generation, the tokenizer.

A language model factorizes a token sequence by the chain rule, p(x) = prod_t p(x_t | x_<t), and
is trained by teacher forcing: the data gives windows x (B, T) and their targets y = x shifted by
one token, and the loss is the mean cross-entropy of the next-token logits (nats per token).

`LanguageModel` is the one base class of genlab's language models (RNN and GPT subclass it
directly). A model implements one method, `step(ids, cache) -> (logits, cache)`: the logits
(B, T, V) of the token after each of the T new tokens, given what `cache` holds (None: nothing),
and the new cache (GPT: keys and values; RNNs: the hidden state). With `block_size` and
`tokenizer` that makes every language model a `contract.TokenGenerator`. Built on it here:
- `logits(ids)`: the full forward pass (no cache), for training and evaluation;
- `generate(prompt_ids, ...)`: streaming generation with temperature, top-k, top-p, repetition
  penalty and a seed (genlab.generation), cached or not (`use_cache`), both giving the
  same tokens;
- `sample(n)`: the contract's sampler, n sequences of `block_size` new tokens after token 0
  (the newline in a character vocabulary sorted by code point) or the tokenizer's `start_id`
  (a music vocabulary's START); its options are
  `SampleOptions` (contract.HasSampleOptions).

The tokenizer is the model's run asset (genlab.token_assets.TokenizerAssets, shared with every
model of token data): bound from the training data's spec, saved as the run's tokenizer.json,
read back from a run folder or from a Hugging Face model folder's own tokenizer files, so a
loaded model encodes prompts and decodes what it generates. It is None until bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.contract import option
from genlab.generation import GenerationConfig, generate_ids
from genlab.token_assets import TokenizerAssets


class LanguageModel(TokenizerAssets, nn.Module):
    config: Any
    block_size: int | None  # the longest context the model reads (None: unbounded)
    data_kinds = ("text",)  # DataSpec kinds (contract.py)

    @dataclass(frozen=True)
    class SampleOptions:
        """The options of `sample` (contract.HasSampleOptions)."""

        max_new_tokens: int | None = option(
            None, help="tokens per sample (default: the training window, block_size)", ge=1
        )
        temperature: float = option(
            1.0, help="divides the logits: below 1 sharper, above 1 more random; 0 = greedy", ge=0
        )

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
        start = getattr(self.tokenizer, "start_id", None)  # a music vocabulary's START
        prompt = torch.full((n, 1), 0 if start is None else start, dtype=torch.long, device=device)
        length = self.config.block_size if max_new_tokens is None else max_new_tokens
        tokens = list(
            self.generate(
                prompt, generator=generator, max_new_tokens=length, temperature=temperature
            )
        )
        if not tokens:
            return torch.zeros(n, 0, dtype=torch.long, device=device)
        return torch.stack(tokens, dim=1)
