"""Text generation for every genlab language model: sampling, streaming, stop strings.

One implementation serves every model that generates token by token (the vanilla RNN, GRU, LSTM
and GPT today), because each of them keeps the same narrow contract
(:class:`genlab.contract.TokenGenerator`): ``step(ids, cache)`` feeds the next T tokens (B, T)
int64 after what ``cache`` holds (None: start fresh) and returns their logits (B, T, V) and a
new cache (GPT: per-layer keys and values; RNNs: the hidden state); ``block_size`` is the
longest context the model reads (None: unbounded, RNNs). Generation does not switch the model
to eval mode: call ``model.eval()`` first, or dropout makes the output random and the cached and
uncached paths disagree (:func:`generate_run` loads a run's model in eval mode).

The pipeline, outermost first:

- :func:`generate_run`: a run folder and a prompt in, its model's text out (`genlab generate`).
- :func:`generate_text` / :func:`complete_text`: prompt string in, text out, streamed piece by
  piece, cut right before the first stop string.
- :func:`generate_ids`: prompt ids in, one new token per batch row out per step. It owns the
  context window of models with a ``block_size`` and the KV cache / hidden state.
- :func:`next_token`: one token per row from the last position's logits.
- :func:`process_logits`: repetition penalty -> temperature -> top-k -> top-p, in the order and
  with the semantics of Hugging Face's ``RepetitionPenaltyLogitsProcessor``,
  ``TemperatureLogitsWarper``, ``TopKLogitsWarper`` and ``TopPLogitsWarper`` (tested against
  them), so that settings carry over from other tools unchanged.

The context window (models with ``block_size``, i.e. GPT). The model sees the tokens from a
window start ``s`` to the end. A prompt longer than ``block_size`` keeps its last
``block_size`` tokens. When the next token would make the visible part longer than
``block_size``, ``s`` jumps forward so that only the last ``max(1, block_size // 2)`` tokens stay
visible, and the cache is rebuilt by feeding those tokens in one ``step`` call. Sliding the
window by one token per step instead would force the cached path to re-read the whole window
for every token (cached keys carry absolute positions, so they cannot be shifted); jumping by
half a block costs one re-read per ``block_size // 2`` tokens. The uncached path
(``use_cache=False``) re-reads the same window from ``s`` on every step, so both paths compute
exactly the same logits and, with the same generator, produce the same tokens. Models without a
``block_size`` (RNNs) have no window: the uncached path re-reads everything from the first
prompt token, the cached path carries the hidden state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from genlab.contract import TokenGenerator
from genlab.errors import GenlabError
from genlab.tokenizers import StreamDecoder, Tokenizer

# Logits are divided by the temperature and a seen token's by the repetition penalty: below this
# (e.g. 1e-300) they overflow to inf and the sampling probabilities become NaN.
MIN_DIVISOR = 0.01


@dataclass
class GenerationConfig:
    max_new_tokens: int = 200  # tokens to draw at most (fewer when a stop string appears)
    temperature: float = 1.0  # divides the logits; 0 = greedy (argmax)
    top_k: int | None = None  # keep the k most likely tokens; None: all
    top_p: float | None = None  # nucleus: smallest set with probability >= p; None or 1: all
    repetition_penalty: float = 1.0  # > 1 discourages tokens already in the visible context
    stop: tuple[str, ...] = ()  # text generation ends right before the first of these
    seed: int | None = None  # seeds a fresh generator when none is passed; None: random

    def validate(self) -> None:
        """Raise GenlabError naming the first bad field and its allowed range."""
        if not _is_int(self.max_new_tokens) or self.max_new_tokens < 0:
            raise GenlabError(
                f"max_new_tokens must be an integer >= 0, got {self.max_new_tokens!r}"
            )
        if not _is_number(self.temperature) or not (
            math.isfinite(self.temperature)
            and (self.temperature == 0 or self.temperature >= MIN_DIVISOR)
        ):
            raise GenlabError(
                f"temperature must be 0 (greedy) or a finite number >= {MIN_DIVISOR}, "
                f"got {self.temperature!r}"
            )
        if self.top_k is not None and (not _is_int(self.top_k) or self.top_k < 1):
            raise GenlabError(f"top_k must be an integer >= 1 or None, got {self.top_k!r}")
        if self.top_p is not None and (not _is_number(self.top_p) or not 0 < self.top_p <= 1):
            raise GenlabError(f"top_p must be in (0, 1] or None, got {self.top_p!r}")
        if not _is_number(self.repetition_penalty) or not (
            math.isfinite(self.repetition_penalty) and self.repetition_penalty >= MIN_DIVISOR
        ):
            raise GenlabError(
                f"repetition_penalty must be a finite number >= {MIN_DIVISOR} (1 = none), "
                f"got {self.repetition_penalty!r}"
            )
        # A bare string would be taken as a tuple of one-character stop strings.
        if isinstance(self.stop, str) or not all(isinstance(s, str) for s in self.stop):
            raise GenlabError(f"stop must be a tuple of strings, got {self.stop!r}")
        if any(s == "" for s in self.stop):
            raise GenlabError("stop strings must be non-empty (an empty one would stop at once)")
        if self.seed is not None and not _is_int(self.seed):
            raise GenlabError(f"seed must be an integer or None, got {self.seed!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------
# One step: logits -> token
# --------------------------------------------------------------------------------------------


def process_logits(logits: Tensor, context: Tensor, config: GenerationConfig) -> Tensor:
    """Repetition penalty, temperature, top-k, top-p, as Hugging Face applies them.

    logits (B, V) for the next token; context (B, t) int64, the tokens the penalty looks at
    (generation passes the visible window). Removed tokens get -inf. With temperature 0
    (greedy) the temperature step is skipped; the filters keep the argmax, so greedy picks the
    argmax of the penalized logits.
    """
    scores = logits  # (B, V)
    penalty = config.repetition_penalty
    if penalty != 1.0 and context.shape[1] > 0:
        # CTRL (Keskar et al., 2019) as in HF: a seen token's logit moves towards "less likely"
        # whatever its sign; each token is penalized once however often it was seen.
        seen = scores.gather(1, context)  # (B, t)
        seen = torch.where(seen < 0, seen * penalty, seen / penalty)
        scores = scores.scatter(1, context, seen)
    if config.temperature > 0 and config.temperature != 1.0:
        scores = scores / config.temperature
    if config.top_k is not None and config.top_k < scores.shape[-1]:
        kth_best = torch.topk(scores, config.top_k, dim=-1).values[:, -1:]  # (B, 1)
        scores = scores.masked_fill(scores < kth_best, -math.inf)  # ties with the k-th stay
    if config.top_p is not None and config.top_p < 1.0:
        # Sorted ascending, a token is dropped when all tokens up to and including it hold
        # at most 1 - p of the probability; the most likely token is always kept.
        ascending, order = torch.sort(scores, dim=-1)  # (B, V)
        cumulative = ascending.softmax(dim=-1).cumsum(dim=-1)
        drop_sorted = cumulative <= 1 - config.top_p
        drop_sorted[:, -1] = False
        drop = drop_sorted.scatter(1, order, drop_sorted)
        scores = scores.masked_fill(drop, -math.inf)
    return scores


def next_token(
    logits: Tensor,
    context: Tensor,
    config: GenerationConfig,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One token per row (B,) int64: argmax when temperature is 0, else a draw from the
    softmax of :func:`process_logits`. logits (B, V); context (B, t) as there."""
    scores = process_logits(logits, context, config)
    if config.temperature == 0:
        return scores.argmax(dim=-1)
    probs = scores.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


# --------------------------------------------------------------------------------------------
# Token streams
# --------------------------------------------------------------------------------------------


def _make_generator(
    config: GenerationConfig, generator: torch.Generator | None, device: torch.device
) -> torch.Generator:
    """The caller's generator, else a fresh one seeded by config.seed (or at random: a bare
    torch.Generator always starts from the same fixed seed)."""
    if generator is not None:
        return generator
    fresh = torch.Generator(device=device)
    if config.seed is None:
        fresh.seed()
    else:
        fresh.manual_seed(config.seed)
    return fresh


def _step(model: TokenGenerator, ids: Tensor, cache: Any | None) -> tuple[Tensor, Any]:
    # inference_mode per call rather than around the generator: a grad-mode context held open
    # across `yield` would leak into the caller's code between tokens. (inference_mode, not
    # no_grad: no version counters or view tracking, about 6% less time per generated token.)
    with torch.inference_mode():
        return model.step(ids, cache)


def generate_ids(
    model: TokenGenerator,
    prompt_ids: Tensor,
    config: GenerationConfig,
    *,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> Generator[Tensor, None, None]:
    """Stream new tokens (B,) int64, one per step, after the prompt (B, T0) int64.

    The config is validated and the prompt checked at call time, not at the first ``next()``.
    Sampling uses ``generator`` if given, else a fresh one seeded by ``config.seed``.
    ``use_cache=False`` re-reads the visible context on every step (see the module docstring
    for the window of models with a ``block_size``); it yields the same tokens, only slower.
    The repetition penalty looks at the visible window, the tokens the model itself sees.
    Stop strings are text and are handled by :func:`generate_text`.
    """
    config.validate()
    if prompt_ids.ndim != 2 or prompt_ids.dtype != torch.long:
        raise GenlabError(
            f"prompt ids must be a (batch, length) int64 tensor, got shape "
            f"{tuple(prompt_ids.shape)} and dtype {prompt_ids.dtype}"
        )
    if prompt_ids.shape[1] == 0:
        raise GenlabError(
            "the prompt is empty: give at least one token (e.g. some text or a start token)"
        )
    generator = _make_generator(config, generator, prompt_ids.device)
    return _generate(model, prompt_ids, config, generator, use_cache)


def _generate(
    model: TokenGenerator,
    prompt_ids: Tensor,
    config: GenerationConfig,
    generator: torch.Generator,
    use_cache: bool,
) -> Generator[Tensor, None, None]:
    block_size = model.block_size
    # `window` holds exactly the visible tokens, tokens[:, s:] in the module docstring.
    window = prompt_ids if block_size is None else prompt_ids[:, -block_size:]  # (B, t)
    if config.max_new_tokens == 0:
        return
    logits, cache = _step(model, window, None)  # (B, t, V)
    for i in range(config.max_new_tokens):
        token = next_token(logits[:, -1], window, config, generator)  # (B,)
        yield token
        if i == config.max_new_tokens - 1:
            return  # the last token's logits are never needed
        window = torch.cat([window, token[:, None]], dim=1)
        reread = not use_cache
        if block_size is not None and window.shape[1] > block_size:
            # s jumps forward to keep the last half block; the cache no longer matches.
            window = window[:, -max(1, block_size // 2) :]
            reread = True
        if reread:
            logits, cache = _step(model, window, None)
        else:
            logits, cache = _step(model, window[:, -1:], cache)


# --------------------------------------------------------------------------------------------
# Text streams
# --------------------------------------------------------------------------------------------


def generate_run(
    run_dir: str | Path,
    prompt: str,
    *,
    checkpoint: str = "last",
    use_cache: bool = True,
    device: str = "cpu",
    on_token: Callable[[int], None] | None = None,
    **settings: Any,
) -> Iterator[str]:
    """Stream the text a language model run generates after `prompt`, piece by piece.

    `settings` are GenerationConfig fields (max_new_tokens, temperature, top_k, top_p,
    repetition_penalty, stop, seed); they and the prompt are checked before the first piece (a
    prompt with characters outside a character vocabulary is an error). `device` is where the
    model runs (see genlab.api.load). `on_token(id)` sees every token drawn (e.g. to write
    them as a MIDI file, genlab.tokenizers.FileTokenizer).
    """
    model = language_model(run_dir, checkpoint=checkpoint, device=device)
    config = GenerationConfig(**settings)  # generate_text validates it before the first piece
    return generate_text(
        model, model.tokenizer, prompt, config, use_cache=use_cache, on_token=on_token
    )


def language_model(run_dir: str | Path, *, checkpoint: str = "last", device: str = "cpu"):
    """The TokenGenerator of a run, with its tokenizer (a GenlabError for any other run)."""
    from genlab.api import load

    model = load(run_dir, checkpoint=checkpoint, device=device)
    if not isinstance(model, TokenGenerator) or model.tokenizer is None:
        raise GenlabError(f"{run_dir} is not a language model run (no tokenizer); try sample")
    return model


def default_prompt(tokenizer: Tokenizer) -> str:
    """What generation starts from when no prompt is given: the tokenizer's start token (a
    music vocabulary's START), else a newline (a text's usual first character)."""
    start = getattr(tokenizer, "start_id", None)
    return "\n" if start is None else tokenizer.decode([start])


def generate_text(
    model: TokenGenerator,
    tokenizer: Tokenizer,
    prompt: str,
    config: GenerationConfig,
    *,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
    on_token: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """Stream the text generated after ``prompt``, piece by piece, as it becomes final.

    Ends after ``config.max_new_tokens`` tokens or right before the first occurrence of any
    of ``config.stop`` in the generated text (the prompt is not searched). A stop string may
    span several tokens, so text that could be the start of one is held back until the next
    tokens settle it; nothing past a stop string is ever yielded, and no token is drawn after
    it. Validation and prompt errors are raised at call time.
    """
    config.validate()
    ids = tokenizer.encode(prompt)
    if not ids:
        raise GenlabError(
            "the prompt is empty: give at least one token (e.g. some text or a start token)"
        )
    prompt_ids = torch.tensor([ids], dtype=torch.long, device=_device_of(model))  # (1, T0)
    tokens = generate_ids(model, prompt_ids, config, generator=generator, use_cache=use_cache)
    if on_token is not None:
        tokens = _recorded(tokens, on_token)
    return _stream_text(tokens, tokenizer.stream_decoder(), config.stop)


def _recorded(tokens: Iterator[Tensor], on_token: Callable[[int], None]) -> Iterator[Tensor]:
    for token in tokens:
        on_token(int(token[0]))
        yield token


def complete_text(
    model: TokenGenerator,
    tokenizer: Tokenizer,
    prompt: str,
    config: GenerationConfig,
    *,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
) -> str:
    """The whole text :func:`generate_text` would stream."""
    pieces = generate_text(
        model, tokenizer, prompt, config, use_cache=use_cache, generator=generator
    )
    return "".join(pieces)


def _device_of(model: TokenGenerator) -> torch.device:
    if isinstance(model, nn.Module):
        parameter = next(model.parameters(), None)
        if parameter is not None:
            return parameter.device
    return torch.device("cpu")


def _stream_text(
    tokens: Generator[Tensor, None, None], decoder: StreamDecoder, stop: tuple[str, ...]
) -> Iterator[str]:
    pending = ""  # decoded text not yet yielded: a possible start of a stop string
    try:
        for token in tokens:
            pending += decoder.push(int(token[0]))
            end = _stop_index(pending, stop)
            if end is not None:
                if end > 0:
                    yield pending[:end]
                return
            ready = len(pending) - _partial_stop_length(pending, stop)
            if ready > 0:
                yield pending[:ready]
                pending = pending[ready:]
    finally:
        tokens.close()  # no model call after a stop string or an abandoned stream
    pending += decoder.flush()
    end = _stop_index(pending, stop)
    if end is not None:
        pending = pending[:end]
    if pending:
        yield pending


def _stop_index(text: str, stop: tuple[str, ...]) -> int | None:
    """Where the earliest stop string in ``text`` begins, or None.

    Searching only the pending text is enough: text was yielded only once no stop string
    could begin in it.
    """
    found = [i for i in (text.find(s) for s in stop) if i >= 0]
    return min(found) if found else None


def _partial_stop_length(text: str, stop: tuple[str, ...]) -> int:
    """Length of the longest tail of ``text`` that is a proper prefix of a stop string."""
    longest = 0
    for s in stop:
        for length in range(min(len(text), len(s) - 1), longest, -1):
            if text.endswith(s[:length]):
                longest = length
                break
    return longest
