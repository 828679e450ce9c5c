"""Music datasets: melodies and four-voice chorales as event tokens (genlab.notes), built in from
music21's corpus (offline) or read from the user's MIDI files.

They are token data (kind "text", genlab.data.base.TOKENS), so the language models (LSTM, GPT)
and MusicVAE train on them unchanged. Example i is a window of `bars` 4/4 bars starting on a bar
line: T = bars * 16 * voices tokens, the events of genlab.notes (16 steps per bar; a chorale's
four voices interleaved step by step, S A T B S A T B ...). A batch is (x, y) as for text: y the
window's events (B, T) int64, x = START followed by y[:-1] (teacher forcing). The spec's extra
holds the EventTokenizer, steps_per_bar (16), voices, bars and what was skipped.

- `bach-melodies`: the soprano of music21's Bach chorales (the 350 of genlab.data.audio's
  chorale_names). `folk-melodies`: music21's Essen folk songs (every tune of each
  corpus/essenFolksong/*.abc opus, named like "essenFolksong/han1.abc#12"; the test*.abc files
  are left out: they are music21's test collections and repeat tunes of the others).
  `melodies`: both. `chorales`: the chorales' four voices (voices=4; pieces with another number
  of parts are skipped). `midi:PATH`: every .mid/.midi under PATH (or the file PATH), each
  file's top line (genlab.notes.melody over all its instruments), bars counted from the file's
  start in 4/4; files that cannot be read are skipped with one warning naming how many and the
  first, and none readable is a GenlabError.
- Meters (Magenta's 4/4 assumption): a bar is 16 steps. Corpus pieces are kept when their
  meter is 4/4, 2/2 or 2/4 with regular bar lines (genlab.notes.corpus_meter; 2/4 bars in
  pairs), after the shift that puts the first full bar on a multiple of 16 steps; others are
  skipped and counted in spec.extra["skipped"] (by meter). Of the 350 chorales 303 are kept
  (skipped: 35 in 3/4, 6 with irregular bar lines, 4 mixing meters, one each in 3/2 and 12/8;
  `chorales` also skips the 13 that do not have four parts); of the 8,462 folk tunes 4,141
  (skipped: 1,369 in 3/4, 922 mixing meters, 886 in 6/8, 336 in 3/8, 214 without a meter,
  166 in 4/2, ...).
- Windows: train has a window at every bar (hop 1 bar) and, with `transpose=K`, each window
  also moved by every shift in -K..K that keeps its notes in 21..108: index i maps to (window,
  shift) by a fixed order (windows in order, shifts ascending), so a batch is a pure function of
  its indices. Val and test windows do not overlap (hop `bars`) and are never transposed.
  Windows with no note-on (rests only) are left out.
- Splits by piece: a piece's split is a function of its name (a BLAKE2 hash u in [0, 1): val
  below 0.1, test below 0.2, else train; about 80/10/10), the same in every music dataset and
  for every `pieces`, so melodies and bach-melodies never put one chorale in two splits. With 3
  or more pieces every split gets one (the nearest pieces by u move); with 2, the second is val
  and test; one piece (or one MIDI file) is split by time: its first 80% of bars train, the
  next 10% val, the last 10% test.
- Options (keyword-only): bars (default 2), transpose (default 0), pieces (the first N pieces
  of the name-sorted list, numbers in names compared as numbers, before the meter filter and
  the split; default all).

Parsing is slow, so each corpus piece is parsed once (genlab.notes.corpus_sequence) and its
quantized notes cached as .npy under $GENLAB_CACHE_DIR/music (a file per piece; music21's own
pickle cache is bypassed). Measured on this project's 2-core CPU machine (music21 10.5, an
empty cache, all three splits): bach-melodies 31 s (then chorales 0.1 s: the same pieces),
folk-melodies 4 min 52 s; afterwards all of `melodies` loads from the cache in 3 s.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genlab.data.base import DataSpec
from genlab.data.options import int_option
from genlab.data.splits import one_split
from genlab.errors import GenlabError
from genlab.notes import (
    EVENTS,
    FOUR_FOUR_METERS,
    MAX_PITCH,
    MIN_PITCH,
    START,
    STEPS_PER_BAR,
    VOCAB_SIZE,
    EventTokenizer,
    corpus_meter,
    corpus_sequence,
    encode_melody,
    encode_voices,
    melody,
    read_midi,
)

MIDI_EXTENSIONS = frozenset({".mid", ".midi"})
HELD_OUT = 0.1  # the share of pieces in val, and in test
TRAIN_BARS = 0.8  # one piece split by time: the first 80% of its bars train, then 10% / 10%


# --- the dataset ------------------------------------------------------------------------------
class EventDataset:
    """Windows of `bars` bars over the events of several pieces laid end to end.

    Window w starts at step starts[w] of `events` (L, voices); example i is window w moved by
    shift s, where offsets[w] <= i < offsets[w + 1] and s = low[w] + i - offsets[w]."""

    def __init__(
        self,
        events: np.ndarray,  # (L, voices) int64, every piece a whole number of bars
        starts: np.ndarray,  # (W,) int64 first step of each window
        low: np.ndarray,  # (W,) int64 the lowest shift of each window
        count: np.ndarray,  # (W,) int64 its number of shifts (1: untransposed only)
        spec: DataSpec,
    ):
        self.events = torch.from_numpy(events)
        self.starts, self.low = torch.from_numpy(starts), torch.from_numpy(low)
        self.offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(count)]).astype(np.int64))
        self.spec = spec
        self.steps = spec.extra["bars"] * STEPS_PER_BAR

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        i = torch.as_tensor(indices, dtype=torch.long)
        if len(i) and (i.min() < 0 or i.max() >= len(self)):
            raise IndexError(f"window index out of range for {len(self)} windows")
        w = torch.searchsorted(self.offsets, i, right=True) - 1  # (B,) window of each example
        shift = self.low[w] + i - self.offsets[w]  # (B,)
        steps = self.starts[w][:, None] + torch.arange(self.steps)  # (B, steps)
        y = self.events[steps].reshape(len(i), -1)  # (B, T): S A T B S A T B ...
        y = torch.where(y >= 2, y + shift[:, None], y)  # note-ons move, NO_EVENT / NOTE_OFF stay
        x = torch.cat([torch.full_like(y[:, :1], START), y[:, :-1]], dim=1)
        return x, y


def _windows(
    pieces: list[np.ndarray], bars: int, hop: int, transpose: int
) -> tuple[np.ndarray, ...]:
    """(events (L, voices), starts, low, count) of the windows of `bars` bars every `hop` bars
    of each piece (steps, voices) that hold a note-on."""
    voices = pieces[0].shape[1]
    events = np.concatenate(pieces)
    tokens = events.reshape(-1, STEPS_PER_BAR * voices)  # (total bars, tokens per bar)
    on = tokens >= 2
    bar_low = np.where(on, tokens, EVENTS).min(axis=1)  # the lowest note-on of each bar
    bar_high = np.where(on, tokens, -1).max(axis=1)
    first_bars, offset = [], 0
    for piece in pieces:
        count = len(piece) // STEPS_PER_BAR
        first_bars.append(offset + np.arange(0, count - bars + 1, hop))
        offset += count
    first = np.concatenate([np.zeros(0, dtype=np.int64), *first_bars])
    if len(first):
        low = np.lib.stride_tricks.sliding_window_view(bar_low, bars)[first].min(axis=1)
        high = np.lib.stride_tricks.sliding_window_view(bar_high, bars)[first].max(axis=1)
    else:
        low = high = first
    keep = high >= 2
    first, low, high = first[keep], low[keep], high[keep]
    # a note-on token e is pitch e - 2 + MIN_PITCH: shifts keep them within MIN..MAX_PITCH
    lowest = np.maximum(-transpose, 2 - low)
    highest = np.minimum(transpose, 2 + MAX_PITCH - MIN_PITCH - high)
    starts = first * STEPS_PER_BAR
    return events, starts.astype(np.int64), lowest.astype(np.int64), highest - lowest + 1


def _dataset(
    name: str, split: str, pieces: list[np.ndarray], options: dict, skipped: dict[str, int]
) -> EventDataset:
    bars, transpose = options["bars"], options["transpose"]
    voices = pieces[0].shape[1] if pieces else 1
    hop, shifts = (1, transpose) if split == "train" else (bars, 0)
    long_enough = [p for p in pieces if len(p) >= bars * STEPS_PER_BAR]
    if not long_enough:
        raise GenlabError(
            f"{name}: no {split} piece is {bars} bars long (option bars; {len(pieces)} pieces)"
        )
    events, starts, low, count = _windows(long_enough, bars, hop, shifts)
    if not len(starts):
        raise GenlabError(f"{name}: the {split} pieces have no {bars}-bar window with a note")
    spec = DataSpec(
        kind="text",
        shape=(bars * STEPS_PER_BAR * voices,),
        levels=0,
        vocab_size=VOCAB_SIZE,
        extra={
            "tokenizer": EventTokenizer(voices),
            "steps_per_bar": STEPS_PER_BAR,
            "voices": voices,
            "bars": bars,
            "pieces": len(long_enough),
            "skipped": dict(skipped),
        },
    )
    return EventDataset(events, starts, low, count, spec)


def _options(split: str, bars: object, transpose: object) -> dict:
    one_split(split)
    return {
        "bars": int_option("bars", bars, minimum=1, maximum=256),
        "transpose": int_option("transpose", transpose, minimum=0, maximum=MAX_PITCH - MIN_PITCH),
    }


# --- splits -----------------------------------------------------------------------------------
def _position(name: str) -> float:
    """u in [0, 1) from a BLAKE2 hash of the piece's name (the same on every machine)."""
    digest = hashlib.blake2b(f"music:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def piece_splits(names: list[str]) -> dict[str, list[int]]:
    """Indices of `names` per split (see the module docstring); one piece: {} (split by time)."""
    if len(names) < 2:
        return {}
    if len(names) == 2:
        return {"train": [0], "val": [1], "test": [1]}
    u = [_position(name) for name in names]
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for i, x in enumerate(u):
        parts["val" if x < HELD_OUT else "test" if x < 2 * HELD_OUT else "train"].append(i)
    for split in ("val", "test", "train"):
        if not parts[split]:  # few pieces: the largest split gives its piece nearest to this one
            donor = max(parts, key=lambda s: len(parts[s]))
            moved = (max if split == "train" else min)(parts[donor], key=u.__getitem__)
            parts[donor].remove(moved)
            parts[split].append(moved)
    return {split: sorted(indices) for split, indices in parts.items()}


def _split_pieces(pieces: list[np.ndarray], names: list[str], split: str) -> list[np.ndarray]:
    """The pieces of `split`: by name, or one piece cut by time into bars."""
    if len(pieces) == 1:
        bars = len(pieces[0]) // STEPS_PER_BAR
        cuts = [0, round(TRAIN_BARS * bars), round((TRAIN_BARS + HELD_OUT) * bars), bars]
        k = ("train", "val", "test").index(split)
        return [pieces[0][cuts[k] * STEPS_PER_BAR : cuts[k + 1] * STEPS_PER_BAR]]
    return [pieces[i] for i in piece_splits(names)[split]]


# --- the corpus -------------------------------------------------------------------------------
def _natural(name: str) -> list:
    """A sort key comparing the numbers in names as numbers ("han1.abc#2" < "han1.abc#10")."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def bach_names() -> list[str]:
    """The Bach chorales (genlab.data.audio.chorale_names), name-sorted."""
    from genlab.data.audio import chorale_names

    return sorted(chorale_names(), key=_natural)


@lru_cache(maxsize=1)
def folk_names() -> tuple[str, ...]:
    """Every tune of music21's Essen folk song opus files but its test collections, as
    "essenFolksong/FILE#X" (X its reference number), name-sorted."""
    from music21 import common

    folder = Path(common.getCorpusFilePath()) / "essenFolksong"
    names = []
    for path in folder.glob("*.abc"):
        if not path.name.startswith("test"):
            numbers = re.findall(rb"^X:\s*(\d+)", path.read_bytes(), flags=re.MULTILINE)
            names += [f"essenFolksong/{path.name}#{int(x)}" for x in numbers]
    return tuple(sorted(set(names), key=_natural))


def _pieces_option(pieces: object, total: int) -> int:
    return total if pieces is None else int_option("pieces", pieces, minimum=1, maximum=total)


def _whole_bars(steps: int) -> int:
    return -(-steps // STEPS_PER_BAR) * STEPS_PER_BAR


@lru_cache(maxsize=4)
def _corpus_events(
    names: tuple[str, ...], voices: int
) -> tuple[list[np.ndarray], list[str], dict[str, int]]:
    """(events (steps, voices) per kept piece, their names, skipped pieces by reason): the
    melody of voice 0 (voices 1) or the four voices of each piece in a 4/4-like meter."""
    events, kept, skipped = [], [], {}
    for name in names:
        meter = corpus_meter(name)
        reason = None if meter in FOUR_FOUR_METERS else meter
        if reason is None:
            seq = corpus_sequence(name)
            steps = _whole_bars(seq.steps)
            if voices == 1:
                events.append(encode_melody(seq.voice(0), steps)[:, None])
            elif len(seq) and seq.notes[:, 3].max() + 1 == voices:
                events.append(encode_voices(seq, voices, steps))
            else:
                reason = f"not {voices} voices"
        if reason is None:
            kept.append(name)
        else:
            skipped[reason] = skipped.get(reason, 0) + 1
    return events, kept, skipped


def _corpus_dataset(
    name: str, names: list[str], split: str, voices: int, options: dict, pieces: object
) -> EventDataset:
    chosen = tuple(names[: _pieces_option(pieces, len(names))])
    events, kept, skipped = _corpus_events(chosen, voices)
    if not kept:
        raise GenlabError(
            f"{name}: none of the first {len(chosen)} pieces is in 4/4, 2/2 or 2/4 (skipped: "
            f"{', '.join(f'{k} {v}' for k, v in sorted(skipped.items()))}); ask for more pieces"
        )
    return _dataset(name, split, _split_pieces(events, kept, split), options, skipped)


def load_bach_melodies(
    split: str = "train", *, bars: int = 2, transpose: int = 0, pieces: int | None = None
) -> EventDataset:
    """`bach-melodies`: the soprano lines of the Bach chorales as melody windows of `bars` bars
    (default 2), transposed by up to `transpose` semitones in train (default 0); `pieces`: the
    first N chorales (default all 350)."""
    options = _options(split, bars, transpose)
    return _corpus_dataset("bach-melodies", bach_names(), split, 1, options, pieces)


def load_folk_melodies(
    split: str = "train", *, bars: int = 2, transpose: int = 0, pieces: int | None = None
) -> EventDataset:
    """`folk-melodies`: the Essen folk songs as melody windows (options as bach-melodies;
    `pieces`: the first N tunes, default all 8,462)."""
    options = _options(split, bars, transpose)
    return _corpus_dataset("folk-melodies", list(folk_names()), split, 1, options, pieces)


def load_melodies(
    split: str = "train", *, bars: int = 2, transpose: int = 0, pieces: int | None = None
) -> EventDataset:
    """`melodies`: bach-melodies and folk-melodies together (each piece in the split it has
    there; `pieces`: the first N of the name-sorted list, the chorales first)."""
    options = _options(split, bars, transpose)
    names = sorted([*bach_names(), *folk_names()], key=_natural)
    return _corpus_dataset("melodies", names, split, 1, options, pieces)


def load_chorales(
    split: str = "train", *, bars: int = 2, transpose: int = 0, pieces: int | None = None
) -> EventDataset:
    """`chorales`: the Bach chorales' four voices, windows of `bars` bars of 16 steps x 4
    voices (T = 128 for 2 bars), the voices interleaved per step (S A T B ...)."""
    options = _options(split, bars, transpose)
    return _corpus_dataset("chorales", bach_names(), split, 4, options, pieces)


# --- midi:PATH --------------------------------------------------------------------------------
def midi_files(root: Path) -> list[Path]:
    """The .mid/.midi files under `root` (recursive, any case), sorted by relative path; or
    [root] for a file."""
    if root.is_file():
        return [root]
    found = [p for p in root.rglob("*") if p.suffix.lower() in MIDI_EXTENSIONS and p.is_file()]
    return sorted(found, key=lambda p: _natural(p.relative_to(root).as_posix()))


@lru_cache(maxsize=4)
def _read_midi_files(
    root: str, signature: tuple[tuple[str, int, int], ...]
) -> tuple[list[np.ndarray], list[str]]:
    """(melody events (steps, 1) per readable file, their names); `signature` (relative path,
    size, mtime) keys the cache. Unreadable files: one warning with their count and the first."""
    base = Path(root)
    events, names, failures = [], [], []
    for relative, _, _ in signature:
        path = base / relative if relative else base
        try:
            seq = melody(read_midi(path))
        except GenlabError as e:
            failures.append(f"{relative or path.name} ({str(e).removeprefix(f'{path}: ')})")
            continue
        events.append(encode_melody(seq, _whole_bars(seq.steps))[:, None])
        names.append(relative)
    where = f"midi:{root}"
    if not events:
        raise GenlabError(
            f"{where}: none of its {len(signature)} MIDI files could be read (first: {failures[0]})"
        )
    if failures:
        warnings.warn(
            f"{where}: skipped {len(failures)} of {len(signature)} MIDI files that could not "
            f"be read (first: {failures[0]})",
            stacklevel=2,
        )
    return events, names


def load_midi_folder(
    path: str,
    split: str = "train",
    *,
    bars: int = 2,
    transpose: int = 0,
    pieces: int | None = None,
) -> EventDataset:
    """`midi:PATH`: the top line of every .mid/.midi file under PATH (or the file PATH) as
    melody windows of `bars` bars (default 2) counted in 4/4 from each file's start;
    `transpose` as for bach-melodies; `pieces`: the first N files. Split by file, one file by
    time (see the module docstring)."""
    options = _options(split, bars, transpose)
    root = Path(path).expanduser()
    if not root.exists():
        raise GenlabError(f"midi:{path}: no such file or folder")
    files = midi_files(root)
    if not files:
        raise GenlabError(f"midi:{path}: no MIDI files (.mid, .midi) in it or its subfolders")
    files = files[: _pieces_option(pieces, len(files))]
    signature = tuple(
        (
            p.relative_to(root).as_posix() if root.is_dir() else "",
            p.stat().st_size,
            p.stat().st_mtime_ns,
        )
        for p in files
    )
    events, names = _read_midi_files(str(root.resolve()), signature)
    return _dataset(f"midi:{path}", split, _split_pieces(events, names, split), options, {})
