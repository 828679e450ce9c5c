"""Text generation: logits processing, the context window, caches, streaming, stop strings.

The language models here are tiny fakes that keep the `LanguageModel` interface: a one-head
causal attention layer with learned absolute positions and a KV cache (GPT-like, small
block_size so the window jumps often), an RNN-like state machine (block_size None), and a
scripted model that emits a fixed text so that stop strings can be tested exactly.
"""

from __future__ import annotations

import codecs
import dataclasses
import math
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from genlab.errors import GenlabError
from genlab.generation import (
    GenerationConfig,
    complete_text,
    generate_ids,
    generate_text,
    next_token,
    process_logits,
)

VOCAB = 11


class TinyAttention(nn.Module):
    """One causal attention head over learned absolute positions, with a KV cache.

    float64 so that the cached (one query at a time) and uncached (all queries at once)
    computations agree to the last bit that could change a sampled token.
    """

    def __init__(self, block_size: int = 8, width: int = 8, seed: int = 0, sharpness: float = 3.0):
        super().__init__()
        self.block_size = block_size
        self.sharpness = sharpness
        with torch.random.fork_rng():  # seeded weights without touching the global RNG
            torch.manual_seed(seed)
            self.token = nn.Embedding(VOCAB, width, dtype=torch.float64)
            self.position = nn.Embedding(block_size, width, dtype=torch.float64)
            self.qkv = nn.Linear(width, 3 * width, dtype=torch.float64)
            self.head = nn.Linear(width, VOCAB, dtype=torch.float64)
        self.calls: list[tuple[int, int]] = []  # (tokens fed, tokens already cached)

    def step(self, ids: Tensor, cache: Any | None) -> tuple[Tensor, Any]:
        cached = 0 if cache is None else cache[0].shape[1]
        length = ids.shape[1]
        self.calls.append((length, cached))
        assert cached + length <= self.block_size, "fed more than block_size tokens"
        positions = torch.arange(cached, cached + length)
        x = self.token(ids) + self.position(positions)  # (B, T, C)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        if cache is not None:
            k = torch.cat([cache[0], k], dim=1)  # (B, cached + T, C)
            v = torch.cat([cache[1], v], dim=1)
        scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])  # (B, T, cached + T)
        visible = positions[:, None] >= torch.arange(cached + length)[None, :]
        scores = scores.masked_fill(~visible, -math.inf)
        out = x + scores.softmax(dim=-1) @ v
        return self.sharpness * self.head(out), (k, v)


class TinyRNN(nn.Module):
    """h_t = tanh(W h_{t-1} + E[x_t]); no block_size: the whole history matters."""

    block_size = None

    def __init__(self, width: int = 8, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.embed = nn.Embedding(VOCAB, width, dtype=torch.float64)
            self.recur = nn.Linear(width, width, dtype=torch.float64)
            self.head = nn.Linear(width, VOCAB, dtype=torch.float64)

    def step(self, ids: Tensor, cache: Any | None) -> tuple[Tensor, Any]:
        h = torch.zeros(ids.shape[0], self.recur.in_features, dtype=torch.float64)
        if cache is not None:
            h = cache
        outputs = []
        for t in range(ids.shape[1]):
            h = torch.tanh(self.recur(h) + self.embed(ids[:, t]))
            outputs.append(self.head(h))
        return 3.0 * torch.stack(outputs, dim=1), h


class ScriptedModel(nn.Module):
    """Predicts `script` after a prompt of `prompt_length` tokens (greedy gives it exactly)."""

    block_size = None

    def __init__(self, script: list[int], prompt_length: int, vocab: int):
        super().__init__()
        self.script, self.prompt_length, self.vocab = script, prompt_length, vocab
        self.fed = 0  # tokens fed in total: shows when generation stopped calling the model

    def step(self, ids: Tensor, cache: Any | None) -> tuple[Tensor, Any]:
        seen = 0 if cache is None else cache
        self.fed += ids.shape[1]
        logits = torch.zeros(ids.shape[0], ids.shape[1], self.vocab)
        for t in range(ids.shape[1]):
            index = seen + t + 1 - self.prompt_length  # which script token comes next
            logits[:, t, self.script[min(max(index, 0), len(self.script) - 1)]] = 10.0
        return logits, seen + ids.shape[1]


class CharTokenizer:
    """One token per character of a fixed alphabet."""

    def __init__(self, alphabet: str):
        self.alphabet = alphabet
        self.vocab_size = len(alphabet)

    def encode(self, text: str) -> list[int]:
        return [self.alphabet.index(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.alphabet[i] for i in ids)

    def stream_decoder(self) -> _CharDecoder:
        return _CharDecoder(self)


class _CharDecoder:
    def __init__(self, tokenizer: CharTokenizer | PieceTokenizer):
        self.tokenizer = tokenizer

    def push(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])

    def flush(self) -> str:
        return ""


class PieceTokenizer(CharTokenizer):
    """Multi-character tokens (a fixed list of pieces; encode only what decode produced)."""

    def __init__(self, pieces: list[str]):
        self.pieces = pieces
        self.vocab_size = len(pieces)

    def encode(self, text: str) -> list[int]:
        ids = []
        while text:
            piece = max((p for p in self.pieces if text.startswith(p)), key=len)
            ids.append(self.pieces.index(piece))
            text = text[len(piece) :]
        return ids

    def decode(self, ids: list[int]) -> str:
        return "".join(self.pieces[i] for i in ids)


class ByteTokenizer:
    """One token per UTF-8 byte; the stream decoder holds back incomplete characters."""

    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    def stream_decoder(self) -> _ByteDecoder:
        return _ByteDecoder()


class _ByteDecoder:
    def __init__(self) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        return self.decoder.decode(bytes([token_id]))

    def flush(self) -> str:
        return self.decoder.decode(b"", final=True)


ALPHABET = "abcdefgh .!"  # VOCAB characters
assert len(ALPHABET) == VOCAB

SETTINGS = {
    "greedy": GenerationConfig(temperature=0.0),
    "sample": GenerationConfig(),
    "temperature": GenerationConfig(temperature=0.7),
    "top_k": GenerationConfig(top_k=3),
    "top_p": GenerationConfig(top_p=0.8),
    "penalty": GenerationConfig(repetition_penalty=1.5, temperature=0.9),
    "everything": GenerationConfig(temperature=1.3, top_k=5, top_p=0.9, repetition_penalty=1.2),
    "greedy_penalty": GenerationConfig(temperature=0.0, repetition_penalty=2.0),
}


def _ids(model: nn.Module, prompt: Tensor, config: GenerationConfig, seed: int, cache: bool):
    generator = torch.Generator().manual_seed(seed)
    steps = generate_ids(model, prompt, config, generator=generator, use_cache=cache)
    return torch.stack(list(steps), dim=1)  # (B, max_new_tokens)


# --------------------------------------------------------------------------------------------
# Cached and uncached paths, the context window
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SETTINGS))
@pytest.mark.parametrize("model_class", [TinyAttention, TinyRNN])
def test_cached_and_uncached_paths_draw_the_same_tokens(model_class, name):
    model = model_class().eval()
    prompt = torch.tensor([[1, 2, 3], [4, 4, 0]])
    config = dataclasses.replace(SETTINGS[name], max_new_tokens=40)
    for seed in range(3):
        cached = _ids(model, prompt, config, seed, cache=True)
        uncached = _ids(model, prompt, config, seed, cache=False)
        assert cached.shape == (2, 40)
        assert torch.equal(cached, uncached)


def test_window_jumps_to_half_a_block_and_rebuilds_the_cache():
    model = TinyAttention(block_size=8).eval()
    prompt = torch.arange(10).remainder(VOCAB)[None]  # longer than block_size: keep the last 8
    tokens = _ids(model, prompt, GenerationConfig(max_new_tokens=15), seed=0, cache=True)
    assert tokens.shape == (1, 15)
    # Fed: the last 8 prompt tokens; then each new token jumps the window to its last 4
    # tokens (one batched re-read), followed by 4 one-token cached steps, and so on.
    jump, single = (4, 0), (1, 4)
    expected = (
        [(8, 0)] + [jump, single, (1, 5), (1, 6), (1, 7)] * 2 + [jump, single, (1, 5), (1, 6)]
    )
    assert model.calls == expected
    assert len(model.calls) == 15  # the last token's logits are never computed

    model.calls.clear()
    _ids(model, prompt, GenerationConfig(max_new_tokens=15), seed=0, cache=False)
    assert [fed for fed, _ in model.calls] == [8] + [4, 5, 6, 7, 8] * 2 + [4, 5, 6, 7]
    assert all(cached == 0 for _, cached in model.calls)


def test_block_size_one_keeps_one_token():
    model = TinyAttention(block_size=1).eval()
    prompt = torch.tensor([[1, 2, 3]])
    cached = _ids(model, prompt, GenerationConfig(max_new_tokens=6), seed=0, cache=True)
    uncached = _ids(model, prompt, GenerationConfig(max_new_tokens=6), seed=0, cache=False)
    assert torch.equal(cached, uncached)
    assert all(call == (1, 0) for call in model.calls)


def test_generation_leaves_grad_mode_alone():
    model = TinyAttention().eval()
    steps = generate_ids(model, torch.tensor([[1]]), GenerationConfig(max_new_tokens=3))
    next(steps)
    assert torch.is_grad_enabled()  # no no_grad context held open across `yield`
    assert len(list(steps)) == 2


# --------------------------------------------------------------------------------------------
# Logits processing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        GenerationConfig(repetition_penalty=1.3),
        GenerationConfig(repetition_penalty=0.7),
        GenerationConfig(temperature=0.6),
        GenerationConfig(top_k=4),
        GenerationConfig(top_p=0.75),
        GenerationConfig(repetition_penalty=1.5, temperature=1.7, top_k=9, top_p=0.6),
        GenerationConfig(repetition_penalty=1.2, temperature=0.5, top_k=30, top_p=0.95),
    ],
    ids=["penalty", "reward", "temperature", "top_k", "top_p", "all", "all_loose"],
)
def test_process_logits_matches_hugging_face(config):
    logits_process = pytest.importorskip("transformers.generation.logits_process")
    processors = []
    if config.repetition_penalty != 1.0:
        processors.append(
            logits_process.RepetitionPenaltyLogitsProcessor(float(config.repetition_penalty))
        )
    if config.temperature != 1.0:
        processors.append(logits_process.TemperatureLogitsWarper(float(config.temperature)))
    if config.top_k is not None:
        processors.append(logits_process.TopKLogitsWarper(config.top_k))
    if config.top_p is not None:
        processors.append(logits_process.TopPLogitsWarper(config.top_p))
    hugging_face = logits_process.LogitsProcessorList(processors)

    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        logits = 2 * torch.randn(4, 50, generator=generator)
        context = torch.randint(0, 50, (4, 12), generator=generator)  # with repeats
        ours = process_logits(logits, context, config)
        theirs = hugging_face(context, logits.clone())
        assert torch.equal(ours, theirs)


def test_top_k_one_is_greedy():
    logits = torch.randn(6, 20, generator=torch.Generator().manual_seed(1))
    context = torch.zeros(6, 0, dtype=torch.long)
    greedy = next_token(logits, context, GenerationConfig(temperature=0.0))
    for seed in range(3):
        drawn = next_token(
            logits, context, GenerationConfig(top_k=1), torch.Generator().manual_seed(seed)
        )
        assert torch.equal(drawn, greedy)


def test_tiny_top_p_keeps_only_the_argmax():
    logits = torch.randn(6, 20, generator=torch.Generator().manual_seed(2))
    processed = process_logits(
        logits, torch.zeros(6, 0, dtype=torch.long), GenerationConfig(top_p=1e-6)
    )
    kept = torch.isfinite(processed)
    assert torch.equal(kept.sum(dim=-1), torch.ones(6, dtype=torch.long))
    assert torch.equal(processed.argmax(dim=-1), logits.argmax(dim=-1))


def test_repetition_penalty_lowers_the_probability_of_seen_tokens():
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0, -3.0]])
    context = torch.tensor([[0, 1, 1]])
    before = logits.softmax(dim=-1)
    after = process_logits(logits, context, GenerationConfig(repetition_penalty=2.0))
    assert torch.equal(after, torch.tensor([[1.0, -2.0, 0.5, 0.0, -3.0]]))
    after = after.softmax(dim=-1)
    assert (after[0, :2] < before[0, :2]).all()
    assert (after[0, 2:] > before[0, 2:]).all()


def test_repetition_penalty_can_change_the_greedy_choice():
    logits = torch.tensor([[3.0, 2.0, 0.0]])
    config = GenerationConfig(temperature=0.0, repetition_penalty=2.0)
    assert next_token(logits, torch.tensor([[0]]), config).item() == 1
    assert next_token(logits, torch.tensor([[2]]), config).item() == 0


# --------------------------------------------------------------------------------------------
# Text streaming and stop strings
# --------------------------------------------------------------------------------------------


def _scripted(tokenizer: Any, prompt: str, text: str) -> ScriptedModel:
    """A model that greedily generates `text` after `prompt`."""
    script, prompt_ids = tokenizer.encode(text), tokenizer.encode(prompt)
    return ScriptedModel(script, len(prompt_ids), tokenizer.vocab_size)


@pytest.mark.parametrize("use_cache", [True, False])
def test_streamed_text_equals_the_complete_text_and_the_decoded_ids(use_cache):
    tokenizer = CharTokenizer(ALPHABET)
    model = TinyAttention().eval()
    config = GenerationConfig(max_new_tokens=30, seed=5, top_k=6)
    pieces = list(generate_text(model, tokenizer, "abc", config, use_cache=use_cache))
    assert len(pieces) == 30  # one character per token: streamed, not in one block
    text = complete_text(model, tokenizer, "abc", config, use_cache=use_cache)
    ids = _ids(model, torch.tensor([tokenizer.encode("abc")]), config, 5, cache=use_cache)
    assert "".join(pieces) == text == tokenizer.decode(ids[0].tolist())


def test_multibyte_characters_stream_whole():
    tokenizer = ByteTokenizer()
    text = "héllo → wörld"
    model = _scripted(tokenizer, "x", text)
    config = GenerationConfig(temperature=0.0, max_new_tokens=len(text.encode()))
    pieces = list(generate_text(model, tokenizer, "x", config))
    assert "".join(pieces) == text
    assert "→" in pieces and "é" in pieces


def test_stop_string_ends_the_text_right_before_it():
    tokenizer = CharTokenizer(ALPHABET)
    model = _scripted(tokenizer, "a", "feed. bad. ace")
    config = GenerationConfig(temperature=0.0, max_new_tokens=30, stop=("d.", "ce"))
    assert list(generate_text(model, tokenizer, "a", config)) == ["f", "e", "e"]
    # The prompt, then one token per draw but the last: nothing is drawn after the stop.
    assert model.fed == len("a") + len("feed.") - 1


def test_stop_string_spanning_two_tokens():
    tokenizer = PieceTokenizer(["he", "llo", " wo", "rld", "!", "x"])
    model = _scripted(tokenizer, "x", "hello world!")
    config = GenerationConfig(temperature=0.0, max_new_tokens=10, stop=("lo w",))
    pieces = list(generate_text(model, tokenizer, "x", config))
    assert pieces == ["he", "l"]  # "lo" is held back until " wo" settles it


def test_multibyte_stop_string():
    tokenizer = ByteTokenizer()
    model = _scripted(tokenizer, "x", "héllo wörld")
    config = GenerationConfig(temperature=0.0, max_new_tokens=40, stop=("ö",))
    assert complete_text(model, tokenizer, "x", config) == "héllo w"


def test_held_back_text_is_released_when_no_stop_follows():
    tokenizer = CharTokenizer(ALPHABET)
    model = _scripted(tokenizer, "a", "ab.abc")
    config = GenerationConfig(temperature=0.0, max_new_tokens=6, stop=("abd",))
    assert list(generate_text(model, tokenizer, "a", config)) == ["ab.", "abc"]


def test_text_held_back_at_the_token_limit_is_yielded():
    tokenizer = CharTokenizer(ALPHABET)
    model = _scripted(tokenizer, "a", "hea")
    config = GenerationConfig(temperature=0.0, max_new_tokens=3, stop=("ab",))
    assert list(generate_text(model, tokenizer, "a", config)) == ["h", "e", "a"]


def test_stop_string_at_the_very_start_yields_nothing():
    tokenizer = CharTokenizer(ALPHABET)
    model = _scripted(tokenizer, "a", "bad")
    config = GenerationConfig(temperature=0.0, max_new_tokens=5, stop=("ba",))
    assert list(generate_text(model, tokenizer, "a", config)) == []


def test_zero_new_tokens_yield_nothing():
    tokenizer = CharTokenizer(ALPHABET)
    model = TinyAttention().eval()
    config = GenerationConfig(max_new_tokens=0)
    assert list(generate_text(model, tokenizer, "abc", config)) == []
    assert list(generate_ids(model, torch.tensor([[1, 2]]), config)) == []
    assert model.calls == []


# --------------------------------------------------------------------------------------------
# Seeds
# --------------------------------------------------------------------------------------------


def test_same_seed_same_text_different_seed_different_text():
    tokenizer = CharTokenizer(ALPHABET)
    model = TinyAttention(sharpness=1.0).eval()

    def text(**fields: Any) -> str:
        config = GenerationConfig(max_new_tokens=40, **fields)
        return complete_text(model, tokenizer, "abc", config)

    assert text(seed=1) == text(seed=1)
    assert text(seed=1) != text(seed=2)
    assert text(seed=None) != text(seed=None)  # a fresh random seed each time

    def with_generator(seed: int) -> str:
        generator = torch.Generator().manual_seed(seed)
        config = GenerationConfig(max_new_tokens=40, seed=2)  # the generator wins
        return complete_text(model, tokenizer, "abc", config, generator=generator)

    assert with_generator(1) == text(seed=1)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_new_tokens", -1),
        ("max_new_tokens", 2.5),
        ("temperature", -0.1),
        ("temperature", math.inf),
        ("temperature", math.nan),
        ("temperature", 1e-300),  # logits / 1e-300 overflow: NaN probabilities (CLI and server)
        ("top_k", 0),
        ("top_p", 0.0),
        ("top_p", 1.5),
        ("repetition_penalty", 0.0),
        ("repetition_penalty", 1e-300),
        ("stop", ("ok", "")),
        ("stop", "abc"),
        ("seed", 1.5),
    ],
)
def test_bad_config_fields_are_named(field, value):
    config = GenerationConfig(**{field: value})
    with pytest.raises(GenlabError, match=field):
        config.validate()
    with pytest.raises(GenlabError, match=field):  # at call time, not at the first token
        generate_ids(TinyAttention(), torch.tensor([[1]]), config)


def test_empty_prompt_is_an_error():
    model = TinyAttention()
    with pytest.raises(GenlabError, match="the prompt is empty"):
        generate_ids(model, torch.zeros(1, 0, dtype=torch.long), GenerationConfig())
    with pytest.raises(GenlabError, match="the prompt is empty"):
        generate_text(model, CharTokenizer(ALPHABET), "", GenerationConfig())
