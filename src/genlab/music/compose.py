"""Composing with any music model: `genlab compose` (the roadmap's project "Composing Music with
AI").

A music model is any model whose tokenizer is a music event vocabulary (genlab.notes
.EventTokenizer, a tokenizers.FileTokenizer), found by protocol, never by name:

- a language model (contract.TokenGenerator: the LSTM, GPT, ... trained on a music dataset)
  continues a primer, or the start token, for `bars` bars: the events are drawn one by one at
  `temperature` (genlab.generation, seeded);
- a latent model of windows (`LatentSequenceModel`: MusicVAE) composes by walking its latent
  space: a song of `bars` bars is ceil(bars / window) windows decoded from points spaced evenly
  along the great circle (slerp) from a start z to a random end z. The start is the primer's
  embedding mu(primer) (its first window) or a random z. Neighbouring windows then share most
  of their latent, so the song changes gradually instead of jumping between unrelated
  2-bar ideas; a hierarchical 16-bar model gives 16 coherent bars per window.
- interpolation (`interpolate`, latent models only): the windows decoded along the slerp from
  mu(a) to mu(b) (Roberts et al. 2018, Sec. 5.2), one after another.
- attribute vectors (`attribute_shift`, latent models only; Sec. 5.3): `amount` times the
  difference between the mean mu of the run's training windows with the most of a melody
  statistic (genlab.notes.STATISTICS: note_density, mean_interval, pitch_range, ...) and the
  mean mu of those with the least, added to every z of the song: amount 1 moves it towards
  denser (wider, ...) melodies, -1 away.

The song is returned as token ids; the tokenizer turns them into a NoteSequence, a MIDI file,
and the command renders WAV and a piano roll from it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from genlab.contract import TokenGenerator
from genlab.errors import GenlabError
from genlab.tokenizers import FileTokenizer


@runtime_checkable
class LatentSequenceModel(Protocol):
    """A model of fixed windows of events with a latent space (MusicVAE): `embed_windows(y)` ->
    mu (B, D) of windows y (B, T); `decode(z, uniforms, temperature=)` -> events (B, T);
    `length` (T, events per window) and `tokenizer`."""

    length: int
    tokenizer: Any

    def embed_windows(self, y: Tensor) -> Tensor: ...

    def decode(self, z: Tensor, uniforms: Tensor | None = None, *, temperature: float = 0.0): ...


def music_tokenizer(model: Any, run: str | Path) -> Any:
    """The model's music vocabulary, or a GenlabError naming what the run is instead."""
    tokenizer = getattr(model, "tokenizer", None)
    if not isinstance(tokenizer, FileTokenizer):
        raise GenlabError(
            f"{run} is not a music run: compose needs a model trained on music events (e.g. "
            "genlab train musicvae --data melodies, or gpt --data bach-melodies)"
        )
    return tokenizer


def primer_events(tokenizer: Any, path: str | Path) -> list[int]:
    """The events of a MIDI file in the model's vocabulary (a melody: its top line)."""
    from genlab.notes import read_midi

    return list(tokenizer.from_sequence(read_midi(path)))


def bar_tokens(tokenizer: Any) -> int:
    return tokenizer.steps_per_bar * tokenizer.voices


def compose(
    model: Any,
    *,
    bars: int,
    primer: list[int] | None = None,
    temperature: float = 1.0,
    seed: int = 0,
    shift: Tensor | None = None,
    run: str | Path = "RUN",
) -> list[int]:
    """The events of a song: the primer's (if any), then `bars` new bars; `shift` (a latent
    model's attribute_shift) is added to every window's z."""
    tokenizer = music_tokenizer(model, run)
    if bars < 1:
        raise GenlabError(f"--bars must be >= 1, got {bars}")
    if temperature < 0 or not math.isfinite(temperature):
        raise GenlabError(f"--temperature must be a number >= 0, got {temperature}")
    generator = torch.Generator().manual_seed(seed)
    if isinstance(model, LatentSequenceModel):
        return _walk(model, tokenizer, bars, primer, temperature, generator, shift)
    if shift is not None:
        raise _needs_latent(run, "--attribute")
    if isinstance(model, TokenGenerator):
        return _continue(model, tokenizer, bars, primer or [], temperature, generator)
    raise GenlabError(f"{run}: compose needs a language model or a latent model of music")


def _needs_latent(run: str | Path, option: str) -> GenlabError:
    return GenlabError(
        f"{run}: {option} needs a model with a latent space (MusicVAE), not a language model"
    )


def attribute_shift(
    model: Any,
    run: str | Path,
    name: str,
    amount: float,
    *,
    windows: int = 2048,
    seed: int = 0,
) -> Tensor:
    """`amount` x the attribute vector of the melody statistic `name` (musicvae
    .attribute_vector), measured on up to `windows` of the run's training windows (drawn with
    `seed`), with the model's tokenizer's statistics (a chorale's: its soprano's)."""
    from genlab.data import load_dataset
    from genlab.music.musicvae import attribute_vector
    from genlab.notes import STATISTICS
    from genlab.training.checkpoint import RunDir

    if not isinstance(model, LatentSequenceModel):
        raise _needs_latent(run, "--attribute")
    if name not in STATISTICS:
        raise GenlabError(f"unknown attribute {name!r}: choose one of {', '.join(STATISTICS)}")
    if not math.isfinite(amount):
        raise GenlabError(f"--amount must be a number, got {amount}")
    tokenizer = music_tokenizer(model, run)
    saved = RunDir(run).read_config()["data"]
    data = load_dataset(saved["name"], "train", **saved["options"])
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(data), generator=generator)[:windows]
    events = data.batch(chosen)[1]
    values = torch.tensor([tokenizer.statistics([row])[name] for row in events.tolist()])
    device = next(model.parameters()).device
    try:
        vector = attribute_vector(model, events.to(device), values.to(device))
    except GenlabError:
        raise GenlabError(
            f"the training windows of {run} do not vary in {name}: no attribute vector"
        ) from None
    return amount * vector.cpu()


def _continue(model, tokenizer, bars: int, primer: list[int], temperature: float, generator):
    """A language model's continuation of START + primer by bars x bar_tokens events."""
    from genlab.generation import GenerationConfig, generate_ids

    device = next(model.parameters()).device
    prompt = torch.tensor([[tokenizer.start_id, *primer]], dtype=torch.long, device=device)
    config = GenerationConfig(max_new_tokens=bars * bar_tokens(tokenizer), temperature=temperature)
    drawn = [int(t[0]) for t in generate_ids(model, prompt, config, generator=generator)]
    return [*primer, *drawn]


def _walk(model, tokenizer, bars: int, primer, temperature: float, generator, shift) -> list[int]:
    """Windows along a slerp from mu(primer) (or a random z) to a random z, each z + shift."""
    from genlab.music.musicvae import slerp

    window_bars = model.length // bar_tokens(tokenizer)
    count = -(-bars // window_bars)  # ceil
    end = torch.randn(1, _z_size(model), generator=generator)[0]
    start = torch.randn(1, _z_size(model), generator=generator)[0]
    if primer:
        start = model.embed_windows(_window(model, tokenizer, primer))[0].cpu()
    points = slerp(start, end, torch.linspace(0, 1, count)) if count > 1 else start[None]
    if shift is not None:
        points = points + shift
    uniforms = torch.rand(count, model.length, generator=generator)
    events = _decode(model, points, uniforms, temperature)
    song = events.reshape(-1)[: bars * bar_tokens(tokenizer)].tolist()
    return [*(primer or []), *song]


def interpolate(
    model: Any, a: list[int], b: list[int], *, steps: int, run: str | Path = "RUN"
) -> list[int]:
    """The windows decoded greedily along the slerp from mu(a) to mu(b), one after another
    (a and b: each melody's first window)."""
    from genlab.music.musicvae import slerp

    tokenizer = music_tokenizer(model, run)
    if not isinstance(model, LatentSequenceModel):
        raise _needs_latent(run, "--interpolate")
    if steps < 2:
        raise GenlabError(f"--steps must be >= 2, got {steps}")
    za = model.embed_windows(_window(model, tokenizer, a))[0].cpu()
    zb = model.embed_windows(_window(model, tokenizer, b))[0].cpu()
    points = slerp(za, zb, torch.linspace(0, 1, steps))
    return _decode(model, points, None, 0.0).reshape(-1).tolist()


def _z_size(model: Any) -> int:
    return model.config.z_size


def _window(model: Any, tokenizer: Any, events: list[int]) -> Tensor:
    """The first window of `events`, (1, T), padded with held silence (NO_EVENT after a
    NOTE_OFF) when shorter."""
    from genlab.notes import NO_EVENT, NOTE_OFF

    window = list(events[: model.length])
    if len(window) < model.length:
        rest = [NOTE_OFF] * tokenizer.voices
        window += rest + [NO_EVENT] * (model.length - len(window) - len(rest))
        window = window[: model.length]
    device = next(model.parameters()).device
    return torch.tensor([window], dtype=torch.long, device=device)


def _decode(model: Any, z: Tensor, uniforms: Tensor | None, temperature: float) -> Tensor:
    device = next(model.parameters()).device
    u = None if uniforms is None else uniforms.to(device)
    return model.decode(z.to(device), u, temperature=temperature).cpu()
