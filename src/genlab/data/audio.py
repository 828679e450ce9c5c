"""Audio datasets: `audio:PATH` (the user's files), `tones` and `chorales-audio` (built in,
offline).

Every audio dataset is a set of fixed-length segments of `segment` samples cut from one split's
audio: a batch is x float32 (B, 1, T) amplitudes in [-1, 1]; with labels (x, y), y int64 (B,);
with a local-conditioning feature sequence (x, y, c), c float32 (B, 2, T // hop) (y all zeros
when the data has no labels), frame j of c covering samples [j * hop, (j + 1) * hop). The
features are a pitch contour: channel 0 the MIDI pitch / 127 of the (top) note sounding at the
frame's centre, channel 1 a voiced flag (1 while a note sounds, else 0 and pitch 0).

Train segments start every segment // 2 samples (the training loop draws them in a random
order: random segments); val and test segments do not overlap. Audio shorter than a segment is
zero-padded once. Splits never share a file or a piece.

- `audio:PATH`: every wav/flac/ogg file under PATH (or the one file PATH), mixed to mono and
  resampled to `sample_rate` (genlab.sound.load_audio). Files are split by a hash of their
  relative path: 10% val, 10% test (at least one each from 3 files; with 2 files the second is
  both val and test); one file is split by time instead (80% train, then 10% val, 10% test).
- `tones`: procedural notes (see `_render_tones`): a pitch (MIDI 48..71), a loudness envelope
  (attack, decay, sustain, release with random times and a random peak), a timbre from a
  harmonic series with one of four amplitude laws, slight vibrato. Labels: the instrument
  (4 classes), the pitch (24 classes) or none.
- `chorales-audio`: Bach chorales from music21's bundled corpus (Riemenschneider order), played
  by an additive synthesizer (`_additive`) or FluidSynth with a General MIDI soundfont. Piece i
  of that order is test when i % 10 == 1, val when i % 10 == 2 (with only 2 pieces, val = test),
  else train, so asking for more pieces never moves a piece between splits. The parsed notes
  and the rendered audio of each piece are cached as .npy under genlab's cache
  (`$GENLAB_CACHE_DIR/audio`), keyed by the options that change them.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genlab.data.base import Batch, DataSpec
from genlab.data.options import choice_option, int_option
from genlab.data.splits import one_split, stable_order
from genlab.errors import GenlabError
from genlab.notes import SOUNDFONTS as SOUNDFONTS  # the chorales' notes, synthesizers, cache
from genlab.notes import _additive, _cached, _fluidsynth, _parse_notes, _soundfont
from genlab.notes import _midi_file as _midi_file

EXTENSIONS = frozenset({".wav", ".flac", ".ogg"})
HOP = 256  # samples per frame of the pitch contour (the local features)
CONTOUR_CHANNELS = 2  # pitch / 127, voiced
LOWEST_PITCH, PITCHES = 48, 24  # tones: MIDI 48 (C3) .. 71 (B4)
INSTRUMENTS = ("sine", "clarinet", "sawtooth", "rolloff")
TONES_SIZES = {"train": 2000, "val": 200, "test": 200}
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}
CACHE_VERSION = 2  # bump when the notes or the synthesizer change


# --- the dataset ------------------------------------------------------------------------------
class AudioDataset:
    """Segments of one long buffer: example i is audio[starts[i] : starts[i] + T]."""

    def __init__(
        self,
        audio: Tensor,  # (L,) float32, the split's pieces end to end
        starts: Tensor,  # (N,) int64 segment starts (multiples of HOP when there are frames)
        spec: DataSpec,
        labels: Tensor | None = None,  # (N,) int64
        frames: Tensor | None = None,  # (CONTOUR_CHANNELS, L // HOP) float32
    ):
        self.audio, self.starts, self.spec = audio, starts.long(), spec
        self.labels, self.frames = labels, frames
        self.segment = spec.shape[-1]

    def __len__(self) -> int:
        return len(self.starts)

    def batch(self, indices: Tensor) -> Batch:
        indices = torch.as_tensor(indices, dtype=torch.long)
        starts = self.starts[indices]  # (B,)
        x = self.audio[starts[:, None] + torch.arange(self.segment)][:, None]  # (B, 1, T)
        if self.frames is None:
            return x if self.labels is None else (x, self.labels[indices])
        y = self.labels[indices] if self.labels is not None else torch.zeros_like(indices)
        frame = (starts // HOP)[:, None] + torch.arange(self.segment // HOP)  # (B, T // HOP)
        c = self.frames[:, frame].permute(1, 0, 2)  # (B, CONTOUR_CHANNELS, T // HOP)
        return x, y, c


def _pack(
    pieces: list[np.ndarray], segment: int, stride: int, frames: list[np.ndarray] | None = None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """(buffer (L,), segment starts (N,), frames (C, L // HOP) or None) from pieces laid end to
    end, each zero-padded to at least one segment (and, with frames, to whole HOP frames)."""
    buffers, starts, framed, offset = [], [], [], 0
    align = HOP if frames is not None else 1
    for i, piece in enumerate(pieces):
        length = -(-max(len(piece), segment) // align) * align
        buffers.append(np.pad(piece, (0, length - len(piece))))
        starts.append(offset + np.arange(0, length - segment + 1, stride))
        if frames is not None:
            count = length // HOP
            framed.append(np.pad(frames[i][:, :count], ((0, 0), (0, count - frames[i].shape[1]))))
        offset += length
    audio = torch.from_numpy(np.concatenate(buffers).astype(np.float32))
    features = torch.from_numpy(np.concatenate(framed, axis=1)).float() if framed else None
    return audio, torch.from_numpy(np.concatenate(starts)), features


def _stride(split: str, segment: int, contour: bool) -> int:
    """segment // 2 for train (a multiple of HOP with a contour), segment for val and test."""
    if split != "train":
        return segment
    return max(HOP, segment // 2 // HOP * HOP) if contour else max(1, segment // 2)


def _check_segment(segment: object, sample_rate: int, contour: bool) -> int:
    segment = int_option("segment", segment, minimum=16, maximum=600 * sample_rate)
    if contour and segment % HOP:
        raise GenlabError(f"option segment must be a multiple of {HOP} with contour, got {segment}")
    return segment


def _bool_option(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise GenlabError(f"option {name} must be true or false, got {value!r}")
    return value


def _contour_extra(contour: bool) -> dict:
    return {"local_channels": CONTOUR_CHANNELS, "local_hop": HOP} if contour else {}


# --- audio:PATH -------------------------------------------------------------------------------
def audio_files(root: Path) -> list[Path]:
    """The wav/flac/ogg files under `root` (recursive, any case), sorted; or [root]."""
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())


@lru_cache(maxsize=4)
def _read_files(
    root: str, sample_rate: int, signature: tuple[tuple[str, int, int], ...]
) -> tuple[np.ndarray, ...]:
    """Each file as mono float32 at `sample_rate`; `signature` (path, size, mtime) keys it."""
    from genlab.sound import load_audio

    base = Path(root)
    return tuple(
        load_audio(base / name if name else base, sample_rate, name=f"audio:{base / name}")
        for name, _, _ in signature
    )


def _file_splits(names: list[str]) -> dict[str, list[int]]:
    """File indices per split: hashed order, 10% val then 10% test, the rest train."""
    if len(names) == 2:
        return {"train": [0], "val": [1], "test": [1]}
    order = stable_order([f"audio:{name}" for name in names]).tolist()
    held = max(1, len(names) // 10)
    return {
        "val": sorted(order[:held]),
        "test": sorted(order[held : 2 * held]),
        "train": sorted(order[2 * held :]),
    }


def _time_split(audio: np.ndarray, split: str) -> np.ndarray:
    """One file's part for `split`: the first 80% train, then 10% val, then 10% test."""
    cut = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}[split]
    return audio[round(cut[0] * len(audio)) : round(cut[1] * len(audio))]


def load_audio_folder(
    path: str, split: str = "train", *, sample_rate: int = 8000, segment: int = 4096
) -> AudioDataset:
    """`audio:PATH`: the wav/flac/ogg files under PATH (or the file PATH) as mono segments of
    `segment` samples at `sample_rate` (default 8000), unlabelled; split by file (see the module
    docstring)."""
    one_split(split)
    sample_rate = int_option("sample_rate", sample_rate, minimum=1000, maximum=192000)
    segment = _check_segment(segment, sample_rate, contour=False)
    root = Path(path).expanduser()
    if not root.exists():
        raise GenlabError(f"audio:{path}: no such file or folder")
    files = audio_files(root)
    if not files:
        raise GenlabError(
            f"audio:{path}: no audio files ({', '.join(sorted(EXTENSIONS))}) in it or its "
            "subfolders"
        )
    # (relative path, size, mtime) per file; a single file PATH is its own root, named ""
    signature = tuple(
        (p.relative_to(root).as_posix() if root.is_dir() else "", *_stat(p)) for p in files
    )
    audio = _read_files(str(root.resolve()), sample_rate, signature)
    if len(audio) == 1:
        pieces = [_time_split(audio[0], split)]
    else:
        pieces = [audio[i] for i in _file_splits([s[0] for s in signature])[split]]
    buffer, starts, _ = _pack(pieces, segment, _stride(split, segment, contour=False))
    spec = DataSpec("audio", (1, segment), levels=0, sample_rate=sample_rate)
    return AudioDataset(buffer, starts, spec)


def _stat(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns


# --- tones ------------------------------------------------------------------------------------
def _harmonic_amplitudes(instrument: np.ndarray, rolloff: np.ndarray, count: int) -> np.ndarray:
    """(N, count) amplitude of harmonic k = 1..count per note, by instrument:
    sine: the fundamental; clarinet: odd harmonics 1/k (even ones 1/(10k)); sawtooth: 1/k;
    rolloff: rolloff^(k-1), bright (0.85) to dark (0.3)."""
    k = np.arange(1, count + 1, dtype=np.float64)
    laws = np.stack(
        [
            (k == 1).astype(np.float64),
            np.where(k % 2 == 1, 1 / k, 0.1 / k),
            1 / k,
            np.zeros_like(k),
        ]
    )  # (4, count)
    amplitudes = laws[instrument]
    amplitudes[instrument == 3] = rolloff[instrument == 3, None] ** (k - 1)
    return amplitudes


def _envelope(t: np.ndarray, rng: np.random.Generator, duration: float) -> tuple[np.ndarray, ...]:
    """ADSR envelopes (N, T) at times t (N, T) in seconds since each note's onset (negative:
    before it), with random attack, decay, sustain level, gate time, release and peak; and
    each note's end (the release's end) in seconds since its onset."""
    n = len(t)
    attack = rng.uniform(0.01, 0.1, n) * duration
    decay = rng.uniform(0.05, 0.2, n) * duration
    sustain = rng.uniform(0.3, 0.9, n)
    release = rng.uniform(0.05, 0.2, n) * duration
    gate = rng.uniform(0.3, 0.6, n) * duration
    peak = rng.uniform(0.2, 0.9, n)

    def level(time: np.ndarray) -> np.ndarray:  # attack to 1, decay to sustain, hold
        rise = np.clip(time / attack[:, None], 0, 1)
        fall = np.clip((time - attack[:, None]) / decay[:, None], 0, 1)
        return rise * (1 - fall * (1 - sustain[:, None]))

    held = level(np.minimum(t, gate[:, None]))
    fade = np.clip(1 - (t - gate[:, None]) / release[:, None], 0, 1)
    return peak[:, None] * held * fade * (t >= 0), gate + release


def _render_tones(
    rng: np.random.Generator, n: int, sample_rate: int, segment: int
) -> tuple[np.ndarray, ...]:
    """n notes of `segment` samples: (audio (n, T) float32, pitch (n,), instrument (n,),
    onset (n,) and end (n,) in samples)."""
    pitch = rng.integers(LOWEST_PITCH, LOWEST_PITCH + PITCHES, n)
    instrument = rng.integers(0, len(INSTRUMENTS), n)
    rolloff = rng.uniform(0.3, 0.85, n)
    duration = segment / sample_rate
    onset = rng.integers(0, segment // 10 + 1, n)
    t = (np.arange(segment)[None] - onset[:, None]) / sample_rate  # (n, T) seconds since onset
    envelope, end = _envelope(t, rng, duration)
    rate, depth = rng.uniform(4, 7, n), rng.uniform(0, 0.15, n)  # vibrato: Hz, semitones
    f0 = 440.0 * 2.0 ** ((pitch - 69) / 12)
    f = f0[:, None] * 2.0 ** (depth[:, None] * np.sin(2 * np.pi * rate[:, None] * t) / 12)
    phase = np.mod(2 * np.pi * np.cumsum(f, axis=1) / sample_rate, 2 * np.pi)  # (n, T)
    phase = phase.astype(np.float32)  # in [0, 2 pi): float32 keeps k * phase precise enough
    count = max(1, int(0.45 * sample_rate / f0.min()))
    amplitudes = _harmonic_amplitudes(instrument, rolloff, count)
    amplitudes[np.arange(1, count + 1)[None] * f0[:, None] >= 0.45 * sample_rate] = 0
    amplitudes /= amplitudes.sum(axis=1, keepdims=True)  # the waveform's peak stays within 1
    offsets = rng.uniform(0, 2 * np.pi, (n, count)).astype(np.float32)
    wave = np.zeros_like(phase)
    for k in range(count):
        audible = np.flatnonzero(amplitudes[:, k] > 1e-4)  # skip harmonics too weak to hear
        weight = amplitudes[audible, k, None].astype(np.float32)
        wave[audible] += weight * np.sin((k + 1) * phase[audible] + offsets[audible, k, None])
    end_samples = onset + np.round(end * sample_rate).astype(np.int64)
    return (wave * envelope).astype(np.float32), pitch, instrument, onset, end_samples


@lru_cache(maxsize=3)
def _tones(split: str, n: int, sample_rate: int, segment: int) -> tuple[np.ndarray, ...]:
    """One split's notes (rendered in chunks of 256 to bound memory), seeded by the split."""
    rng = np.random.default_rng([19, SPLIT_SEEDS[split], sample_rate, segment])
    chunks = [_render_tones(rng, min(256, n - i), sample_rate, segment) for i in range(0, n, 256)]
    return tuple(np.concatenate(parts) for parts in zip(*chunks, strict=True))


def _note_frames(pitch: np.ndarray, onset: np.ndarray, end: np.ndarray, count: int) -> np.ndarray:
    """(CONTOUR_CHANNELS, count) contour of notes (pitch, onset, end in samples) that do not
    overlap: pitch / 127 and 1 at frames whose centre lies in [onset, end), else 0."""
    centres = np.arange(count) * HOP + HOP // 2
    frames = np.zeros((CONTOUR_CHANNELS, count), dtype=np.float32)
    for p, start, stop in zip(pitch, onset, end, strict=True):
        sounding = (centres >= start) & (centres < stop)
        frames[0, sounding] = p / 127
        frames[1, sounding] = 1.0
    return frames


def load_tones(
    split: str = "train",
    *,
    sample_rate: int = 8000,
    segment: int = 4096,
    label: str = "instrument",
    contour: bool = False,
    n: int | None = None,
) -> AudioDataset:
    """`tones`: one procedural note per example, (1, segment) at `sample_rate` (8000 or 16000).

    label: "instrument" (4 classes: sine, clarinet, sawtooth, rolloff; default), "pitch"
    (24 classes: MIDI 48..71) or "none". contour: each example also carries the note's pitch
    contour c (2, segment // 256). n: examples per split (default 2000 / 200 / 200)."""
    one_split(split)
    sample_rate = choice_option("sample_rate", sample_rate, (8000, 16000))
    contour = _bool_option("contour", contour)
    segment = _check_segment(segment, sample_rate, contour)
    label = choice_option("label", label, ("instrument", "pitch", "none"))
    n = TONES_SIZES[split] if n is None else int_option("n", n, minimum=1, maximum=10**6)
    audio, pitch, instrument, onset, end = _tones(split, n, sample_rate, segment)
    labels, classes = {
        "instrument": (instrument, list(INSTRUMENTS)),
        "pitch": (pitch - LOWEST_PITCH, [str(p) for p in range(LOWEST_PITCH, 72)]),
        "none": (None, []),
    }[label]
    frames = None
    if contour:  # (2, n, T // HOP): frames sounding between each note's onset and end
        centres = np.arange(segment // HOP) * HOP + HOP // 2
        sounding = (centres >= onset[:, None]) & (centres < end[:, None])  # (n, T // HOP)
        both = np.stack([sounding * pitch[:, None] / 127, sounding]).astype(np.float32)
        frames = list(both.transpose(1, 0, 2))  # per note (2, T // HOP)
    buffer, starts, features = _pack(list(audio), segment, segment, frames)
    spec = DataSpec(
        "audio",
        (1, segment),
        num_classes=len(classes),
        levels=0,
        sample_rate=sample_rate,
        extra={"classes": classes, **_contour_extra(contour)},
    )
    y = None if labels is None else torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return AudioDataset(buffer, starts, spec, y, features)


# --- chorales-audio ---------------------------------------------------------------------------
@lru_cache(maxsize=1)
def chorale_names() -> tuple[str, ...]:
    """music21's bundled Bach chorales in Riemenschneider order (corpus names, e.g. bach/bwv269)."""
    from music21 import corpus

    names = corpus.chorales.Iterator(numberingSystem="riemenschneider", returnType="filename")
    return tuple(dict.fromkeys(str(name) for name in names))  # in order, each once


def chorale_splits(pieces: int) -> dict[str, list[int]]:
    """Indices (into chorale_names) per split of the first `pieces` chorales: i % 10 == 1 test,
    i % 10 == 2 val (with 2 pieces: val = test = piece 1), else train."""
    test = [i for i in range(pieces) if i % 10 == 1]
    val = [i for i in range(pieces) if i % 10 == 2] or test
    train = [i for i in range(pieces) if i % 10 not in (1, 2)]
    return {"train": train, "val": val, "test": test}


@dataclass(frozen=True)
class _Rendering:
    sample_rate: int
    tempo: float  # seconds per quarter note
    synth: str  # "additive" or "fluidsynth"


def _chorale(name: str, how: _Rendering, contour: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(audio (n,), soprano contour (2, frames) or None) of one chorale, from the cache."""
    slug = name.replace("/", "_")
    notes = _cached(f"{slug}.notes.v{CACHE_VERSION}.npy", lambda: _parse_notes(name))
    key = f"{slug}.{how.synth}.{how.sample_rate}hz.{round(how.tempo * 1000)}ms.v{CACHE_VERSION}"
    if how.synth == "additive":
        seed = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "big")
        render = lambda: _additive(notes, how.sample_rate, how.tempo, seed)  # noqa: E731
    else:
        render = lambda: _fluidsynth(notes, how.sample_rate, how.tempo)  # noqa: E731
    audio = _cached(f"{key}.npy", render)
    if not contour:
        return audio, None
    soprano = notes[notes[:, 3] == 0]
    to_samples = how.tempo * how.sample_rate
    onset = np.round(soprano[:, 0] * to_samples).astype(np.int64)
    end = np.round((soprano[:, 0] + soprano[:, 1]) * to_samples).astype(np.int64)
    return audio, _note_frames(soprano[:, 2], onset, end, -(-len(audio) // HOP))


def load_chorales_audio(
    split: str = "train",
    *,
    pieces: int = 60,
    sample_rate: int = 8000,
    tempo: float = 0.5,
    segment: int = 4096,
    synth: str = "additive",
    contour: bool = False,
) -> AudioDataset:
    """`chorales-audio`: the first `pieces` Bach chorales (default 60, at least 2) of music21's
    corpus played at `tempo` seconds per quarter note (default 0.5) and `sample_rate` (default
    8000), as unlabelled segments of `segment` samples. synth: "additive" (default, the same
    everywhere), "fluidsynth" or "auto" (fluidsynth when installed with a soundfont). contour:
    the soprano's pitch contour as local features (2, segment // 256). Split by piece."""
    one_split(split)
    names = chorale_names()
    pieces = int_option("pieces", pieces, minimum=2, maximum=len(names))
    sample_rate = int_option("sample_rate", sample_rate, minimum=4000, maximum=48000)
    if isinstance(tempo, bool) or not isinstance(tempo, int | float) or not 0.1 <= tempo <= 4:
        raise GenlabError(
            f"option tempo must be seconds per quarter note in [0.1, 4], got {tempo!r}"
        )
    contour = _bool_option("contour", contour)
    segment = _check_segment(segment, sample_rate, contour)
    synth = choice_option("synth", synth, ("additive", "fluidsynth", "auto"))
    if synth == "auto":
        found = shutil.which("fluidsynth") is not None and _soundfont() is not None
        synth = "fluidsynth" if found else "additive"
    how = _Rendering(sample_rate, float(tempo), synth)
    rendered = [_chorale(names[i], how, contour) for i in chorale_splits(pieces)[split]]
    frames = [f for _, f in rendered] if contour else None
    buffer, starts, features = _pack(
        [a for a, _ in rendered], segment, _stride(split, segment, contour), frames
    )
    spec = DataSpec(
        "audio",
        (1, segment),
        levels=0,
        sample_rate=sample_rate,
        extra={"synth": synth, **_contour_extra(contour)},
    )
    return AudioDataset(buffer, starts, spec, None, features)
