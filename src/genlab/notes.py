"""The note layer: symbolic music as quantized note sequences, shared by the music datasets, the
music models, `genlab compose` and the audio datasets (a leaf like genlab.sound: numpy here,
pretty_midi / music21 / matplotlib inside the functions that need them).

Time is counted in steps of a sixteenth note: STEPS_PER_QUARTER = 4, so a 4/4 bar is
STEPS_PER_BAR = 16 steps (Magenta's MusicVAE quantization; its melodies assume 4/4). A
`NoteSequence` holds notes as int64 rows (start step, end step exclusive, MIDI pitch, voice)
sorted by (start, voice, pitch), and a tempo in quarter notes per minute (qpm).

Events (Magenta's melody one-hot encoding, as MusicVAE's melody converter uses it): a melody is
one event per step, over the piano's pitches MIN_PITCH..MAX_PITCH = 21..108 (A0..C8):

    NO_EVENT = 0         nothing new: the note sounding goes on, or the rest goes on
    NOTE_OFF = 1         the note sounding stops (a rest begins)
    2 + (p - 21)         a note of pitch p begins (and the one sounding, if any, stops)

so EVENTS = 90; START = 90 is one more token that is only ever an input (the first input of a
window, as text's windows start after a token), and VOCAB_SIZE = 91. A C4 quarter note, an
eighth rest, then E4 is [41, 0, 0, 0, 1, 0, 45, ...]. Pitches outside 21..108 are moved by
octaves into the range; NO_EVENT at the very start is silence.

Polyphony (the four-voice chorales): each voice gets the same per-step events from its own notes
(`encode_voices`, (steps, voices)); the token stream interleaves the voices step by step
(S A T B S A T B ..., `events.reshape(-1)`). `melody` takes the top line of anything
(skyline), which is how a MIDI file or a chorale becomes a melody.

MIDI files are read with pretty_midi through the file's tempo map (a note's time in quarter
notes is its tick / the file's resolution, whatever the tempo), then quantized; genlab writes
format 1 files itself (one track per voice, named "voice V", on MIDI channel V), so that
read_midi(write_midi(seq)) == seq for every quantized sequence. Pieces of music21's corpus
(`corpus_sequence`) are parsed once and cached as .npy under genlab's cache, shifted so that
their first full bar starts on a bar line of the 16-step grid (a pickup becomes rests).

Also here: Krumhansl-Schmuckler key estimation, the RL Tuner's melody statistics, audio
(an additive synthesizer, or FluidSynth with a General MIDI soundfont), piano-roll figures, and
`EventTokenizer`, the genlab tokenizer over the 91 event ids whose files are MIDI.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from genlab.errors import GenlabError
from genlab.fileio import atomic_write

if TYPE_CHECKING:
    import tokenizers

STEPS_PER_QUARTER = 4  # sixteenth notes
STEPS_PER_BAR = 16  # a 4/4 bar
MIN_PITCH, MAX_PITCH = 21, 108  # the piano: A0 .. C8, as Magenta's melody converter
NO_EVENT, NOTE_OFF = 0, 1
EVENTS = 2 + MAX_PITCH - MIN_PITCH + 1  # 90: the events a model predicts
START = EVENTS  # 90: the start token, only ever an input
VOCAB_SIZE = EVENTS + 1  # 91
FOUR_FOUR_METERS = ("4/4", "2/2", "2/4")  # bars that fit the 16-step grid (2/4: in pairs)
SYNTHS = ("additive", "fluidsynth")
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
VELOCITY = 80  # of every note genlab writes
PPQ = 480  # MIDI ticks per quarter note in the files genlab writes
SOUNDFONTS = (
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/soundfonts/default.sf2",
)
CORPUS_CACHE_VERSION = 1  # bump when corpus_sequence's notes or meters change


# --- note sequences ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class NoteSequence:
    """Notes as int64 rows (start step, end step exclusive, pitch, voice), sorted by (start,
    voice, pitch) and read-only; `qpm` quarter notes per minute. Two sequences are equal when
    their notes and tempo are."""

    notes: np.ndarray  # (N, 4) int64
    qpm: float = 120.0

    def __post_init__(self) -> None:
        raw = np.asarray(self.notes)
        if raw.size == 0:
            raw = raw.reshape(0, 4)
        if raw.ndim != 2 or raw.shape[1] != 4:
            raise GenlabError(f"notes must be (N, 4) rows, got shape {raw.shape}")
        notes = raw.astype(np.int64)
        if not np.array_equal(notes, raw):
            raise GenlabError("notes must be whole steps (quantize them first)")
        start, end, pitch, voice = notes.T
        if len(notes) and not (start >= 0).all():
            raise GenlabError(f"a note starts before step 0 (at {start.min()})")
        if not (end > start).all():
            raise GenlabError("every note must end after it starts")
        if not ((pitch >= 0) & (pitch <= 127)).all():
            raise GenlabError(f"MIDI pitches are 0..127, got {pitch.min()}..{pitch.max()}")
        if len(notes) and not (voice >= 0).all():
            raise GenlabError("voices are numbered from 0")
        if isinstance(self.qpm, bool) or not math.isfinite(self.qpm) or self.qpm <= 0:
            raise GenlabError(f"qpm must be a positive number, got {self.qpm!r}")
        notes = notes[np.lexsort((pitch, voice, start))]
        notes.flags.writeable = False
        object.__setattr__(self, "notes", notes)
        object.__setattr__(self, "qpm", float(self.qpm))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NoteSequence):
            return NotImplemented
        return self.qpm == other.qpm and np.array_equal(self.notes, other.notes)

    __hash__ = None  # type: ignore[assignment]  # it holds an array: not a dict key

    def __len__(self) -> int:
        return len(self.notes)

    def __repr__(self) -> str:
        return f"NoteSequence({len(self)} notes, {self.steps} steps, qpm={self.qpm:g})"

    @property
    def steps(self) -> int:
        """The end of the last note (0 when there is none)."""
        return int(self.notes[:, 1].max()) if len(self) else 0

    def transpose(self, semitones: int) -> NoteSequence:
        """Every pitch moved by `semitones` (a GenlabError if one leaves 0..127)."""
        return NoteSequence(self.notes + np.array([0, 0, int(semitones), 0]), self.qpm)

    def voice(self, v: int) -> NoteSequence:
        """The notes of voice `v` (keeping their voice number)."""
        return NoteSequence(self.notes[self.notes[:, 3] == v], self.qpm)


def _empty(qpm: float = 120.0) -> NoteSequence:
    return NoteSequence(np.zeros((0, 4), dtype=np.int64), qpm)


def quantize(rows_in_quarters: Sequence | np.ndarray, *, qpm: float = 120.0) -> NoteSequence:
    """Rows (onset, duration in quarter notes, pitch, voice) on the sixteenth-note grid.

    start = round(onset * 4), end = round((onset + duration) * 4), halves rounded up; a note that
    rounds to no length gets one step; notes with the same (start, pitch, voice) become one (the
    longest); a note that still sounds when the same pitch starts again in its voice ends there
    (MIDI cannot hold one key down twice, so this is what survives a MIDI file)."""
    rows = np.asarray(rows_in_quarters, dtype=np.float64).reshape(-1, 4)
    if not np.isfinite(rows).all():
        raise GenlabError("note rows must be finite numbers")
    if (rows[:, 1] < 0).any():
        raise GenlabError("note durations must be >= 0")
    start = np.floor(rows[:, 0] * STEPS_PER_QUARTER + 0.5).astype(np.int64)
    end = np.floor((rows[:, 0] + rows[:, 1]) * STEPS_PER_QUARTER + 0.5).astype(np.int64)
    end = np.maximum(end, start + 1)
    pitch, voice = np.round(rows[:, 2]).astype(np.int64), np.round(rows[:, 3]).astype(np.int64)
    order = np.lexsort((-end, start, pitch, voice))  # by voice, pitch, start; longest first
    start, end, pitch, voice = start[order], end[order], pitch[order], voice[order]
    same_key = (voice[1:] == voice[:-1]) & (pitch[1:] == pitch[:-1])
    first = np.r_[True, ~(same_key & (start[1:] == start[:-1]))]  # the longest of duplicates
    start, end, pitch, voice = start[first], end[first], pitch[first], voice[first]
    same_key = (voice[1:] == voice[:-1]) & (pitch[1:] == pitch[:-1])
    end[:-1] = np.where(same_key, np.minimum(end[:-1], start[1:]), end[:-1])
    return NoteSequence(np.stack([start, end, pitch, voice], axis=1), qpm)


def _quarter_rows(seq: NoteSequence) -> np.ndarray:
    """(N, 4) float64 rows (onset, duration in quarter notes, pitch, voice): quantize's input."""
    start, end, pitch, voice = seq.notes.T.astype(np.float64)
    return np.stack([start / STEPS_PER_QUARTER, (end - start) / STEPS_PER_QUARTER, pitch, voice], 1)


# --- MIDI files -------------------------------------------------------------------------------
def read_midi(path: str | Path) -> NoteSequence:
    """The notes of a MIDI file, quantized: every non-drum instrument is a voice (numbered in
    pretty_midi's order, or by the "voice V" track names genlab writes), times in quarter notes
    through the file's tempo map, qpm the first tempo (to a thousandth: MIDI stores microseconds
    per quarter). A missing, empty, corrupt or note-less file is a GenlabError naming it."""
    import pretty_midi

    path = Path(path).expanduser()
    if not path.is_file():
        raise GenlabError(f"{path}: no such MIDI file")
    if path.stat().st_size == 0:
        raise GenlabError(f"{path}: the file is empty, not MIDI")
    try:
        with warnings.catch_warnings():  # pretty_midi's complaints about odd but readable files
            warnings.simplefilter("ignore")
            midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as e:  # mido and pretty_midi raise many types on a bad file
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GenlabError(f"{path}: not a readable MIDI file ({reason})") from None
    instruments = [i for i in midi.instruments if not i.is_drum]
    rows = []
    for voice, instrument in zip(_voice_numbers(instruments), instruments, strict=True):
        for note in instrument.notes:
            start = midi.time_to_tick(note.start) / midi.resolution
            end = midi.time_to_tick(note.end) / midi.resolution
            rows.append((start, end - start, note.pitch, voice))
    if not rows:
        raise GenlabError(f"{path}: no notes in it (drum tracks aside)")
    tempi = midi.get_tempo_changes()[1]
    return quantize(rows, qpm=round(float(tempi[0]), 3) if len(tempi) else 120.0)


def _voice_numbers(instruments: list) -> list[int]:
    """V for instruments all named "voice V" (genlab's files, V distinct), else 0, 1, 2, ..."""
    found = [re.fullmatch(r"voice (\d+)", i.name.strip()) for i in instruments]
    numbers = [int(m.group(1)) for m in found if m]
    if len(numbers) == len(instruments) and len(set(numbers)) == len(numbers):
        return numbers
    return list(range(len(instruments)))


def _varlen(value: int) -> bytes:
    """A MIDI variable-length quantity: 7 bits per byte, high bit set on all but the last."""
    out = [value & 0x7F]
    while value > 0x7F:
        value >>= 7
        out.append(0x80 | (value & 0x7F))
    return bytes(reversed(out))


def _track(events: list[tuple[int, int, bytes]]) -> bytes:
    """An MTrk chunk of (tick, order, message) events: sorted (at one tick by order: note-offs
    before note-ons), delta times, then end of track."""
    track, now = b"", 0
    for tick, _, message in sorted(events):
        track += _varlen(tick - now) + message
        now = tick
    track += b"\x00\xff\x2f\x00"
    return b"MTrk" + len(track).to_bytes(4, "big") + track


def _header(midi_format: int, tracks: int) -> bytes:
    return (
        b"MThd"
        + (6).to_bytes(4, "big")
        + midi_format.to_bytes(2, "big")
        + tracks.to_bytes(2, "big")
        + PPQ.to_bytes(2, "big")
    )


def _tempo_event(seconds_per_quarter: float) -> tuple[int, int, bytes]:
    microseconds = round(seconds_per_quarter * 1e6)
    if not 1 <= microseconds <= 0xFFFFFF:  # what MIDI's 3 bytes hold
        raise GenlabError(f"MIDI cannot store a tempo of {60 / seconds_per_quarter:g} qpm")
    return (0, 0, b"\xff\x51\x03" + microseconds.to_bytes(3, "big"))


def _midi_file(notes: np.ndarray, tempo: float) -> bytes:
    """A standard MIDI file (format 0, 480 ticks per quarter) of `notes`, one channel per part
    (skipping the drum channel 9), every part on a General MIDI church organ (program 19)."""
    channels = sorted({int(part) for part in notes[:, 3]})
    channel = {part: i + (i >= 9) for i, part in enumerate(channels)}
    events = [_tempo_event(tempo)]
    events += [(0, 1, bytes([0xC0 | channel[part], 19])) for part in channels]
    for onset, duration, pitch, part in notes:
        c, key = channel[int(part)], int(pitch)
        events.append((round(onset * PPQ), 3, bytes([0x90 | c, key, 80])))
        events.append((round((onset + duration) * PPQ), 2, bytes([0x80 | c, key, 0])))
    return _header(0, 1) + _track(events)


def midi_bytes(seq: NoteSequence, *, program: int = 0) -> bytes:
    """`seq` as a format 1 MIDI file: a tempo track (seq.qpm, 4/4), then one track per voice V
    named "voice V" on MIDI channel V (10 and up shift past the drum channel 9), General MIDI
    `program` (0: piano), velocity 80."""
    if isinstance(program, bool) or not isinstance(program, int) or not 0 <= program <= 127:
        raise GenlabError(f"a General MIDI program is 0..127, got {program!r}")
    voices = sorted({int(v) for v in seq.notes[:, 3]})
    if voices and voices[-1] > 14:
        raise GenlabError(f"MIDI has 15 melodic channels: voices 0..14, got voice {voices[-1]}")
    time_signature = (0, 1, b"\xff\x58\x04\x04\x02\x18\x08")  # 4/4
    chunks = [_track([_tempo_event(60.0 / seq.qpm), time_signature])]
    ticks = PPQ // STEPS_PER_QUARTER
    for v in voices:
        c = v + (v >= 9)
        name = f"voice {v}".encode()
        events = [
            (0, 0, b"\xff\x03" + _varlen(len(name)) + name),
            (0, 1, bytes([0xC0 | c, program])),
        ]
        for start, end, pitch, _ in seq.notes[seq.notes[:, 3] == v]:
            events.append((int(start) * ticks, 3, bytes([0x90 | c, int(pitch), VELOCITY])))
            events.append((int(end) * ticks, 2, bytes([0x80 | c, int(pitch), 0])))
        chunks.append(_track(events))
    return _header(1, len(chunks)) + b"".join(chunks)


def write_midi(seq: NoteSequence, path: str | Path, *, program: int = 0) -> Path:
    """Write `seq` as a MIDI file (midi_bytes) at `path`, atomically; the folder is made."""
    data = midi_bytes(seq, program=program)
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


# --- melodies and events ----------------------------------------------------------------------
def melody(seq: NoteSequence) -> NoteSequence:
    """The top line (skyline), voice 0: at every step the highest pitch sounding; a note begins
    where the top pitch changes, or where a note of the top pitch begins (a repeated note)."""
    if not len(seq):
        return _empty(seq.qpm)
    steps = seq.steps
    top = np.full(steps, -1, dtype=np.int64)
    for start, end, pitch, _ in seq.notes[np.argsort(seq.notes[:, 2], kind="stable")]:
        top[start:end] = pitch  # higher pitches come later and win
    onsets = np.zeros((steps, 128), dtype=bool)
    onsets[seq.notes[:, 0], seq.notes[:, 2]] = True
    sounding = top >= 0
    begins = sounding & onsets[np.arange(steps), np.maximum(top, 0)]
    new = sounding & (begins | np.r_[True, top[1:] != top[:-1]])
    starts = np.flatnonzero(new)
    boundaries = np.flatnonzero(new | ~sounding)  # where a note of the top line must stop
    after = np.searchsorted(boundaries, starts, side="right")
    ends = np.append(boundaries, steps)[after]
    rows = np.stack([starts, ends, top[starts], np.zeros_like(starts)], axis=1)
    return NoteSequence(rows, seq.qpm)


def _in_piano_range(pitch: np.ndarray) -> np.ndarray:
    """Pitches moved by whole octaves into MIN_PITCH..MAX_PITCH."""
    low = np.maximum(0, -(-(MIN_PITCH - pitch) // 12))  # octaves up
    high = np.maximum(0, -(-(pitch - MAX_PITCH) // 12))  # octaves down
    return pitch + 12 * low - 12 * high


def _line_events(rows: np.ndarray, steps: int) -> np.ndarray:
    """(steps,) events of notes (start, end, pitch, ...) that do not overlap."""
    events = np.zeros(steps, dtype=np.int64)
    rows = rows[rows[:, 0] < steps]
    ends = rows[:, 1]
    events[ends[ends < steps]] = NOTE_OFF
    events[rows[:, 0]] = 2 + _in_piano_range(rows[:, 2]) - MIN_PITCH  # a note-on beats an off
    return events


def _one_line(rows: np.ndarray) -> np.ndarray:
    """Notes (start, end, pitch, ...) sorted by (start, pitch) made monophonic: of notes that
    start together the highest stays; a note ends where the next one starts."""
    last = np.r_[rows[1:, 0] != rows[:-1, 0], True]
    rows = rows[last].copy()
    rows[:-1, 1] = np.minimum(rows[:-1, 1], rows[1:, 0])
    return rows


def _steps(steps: int | None, default: int) -> int:
    if steps is None:
        return default
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 0:
        raise GenlabError(f"steps must be an integer >= 0, got {steps!r}")
    return int(steps)


def encode_melody(seq: NoteSequence, steps: int | None = None) -> np.ndarray:
    """(steps,) int64 events of the top line of `seq` (see the module docstring); `steps`
    defaults to seq.steps. A note longer than the window is cut; a pitch outside 21..108 moves
    by octaves into it."""
    return _line_events(melody(seq).notes, _steps(steps, seq.steps))


def _check_events(events: Any, ndim: int) -> np.ndarray:
    raw = np.asarray(events)
    if raw.size == 0:
        raw = raw.reshape((0,) * ndim)
    if raw.ndim != ndim:
        raise GenlabError(f"expected {ndim}-D events, got shape {raw.shape}")
    array = raw.astype(np.int64)
    if not np.array_equal(array, raw):
        raise GenlabError("events must be integers")
    if (array == START).any():
        raise GenlabError(f"START ({START}) is an input token only; drop it before decoding")
    bad = array[(array < 0) | (array >= EVENTS)]
    if len(bad):
        raise GenlabError(f"event {bad[0]} is out of range (events are 0..{EVENTS - 1})")
    return array


def _line_notes(events: np.ndarray, voice: int) -> np.ndarray:
    """(N, 4) rows of one voice's (steps,) events: a note runs from its note-on to the next
    note-on or NOTE_OFF (or the end)."""
    marks = np.flatnonzero(events >= NOTE_OFF)
    ons = marks[events[marks] >= 2]
    ends = np.append(marks, len(events))[np.searchsorted(marks, ons, side="right")]
    pitch = events[ons] - 2 + MIN_PITCH
    return np.stack([ons, ends, pitch, np.full_like(ons, voice)], axis=1)


def decode_melody(events: Any, *, qpm: float = 120.0) -> NoteSequence:
    """The melody (voice 0) of (steps,) events; NO_EVENT before the first note is silence."""
    return NoteSequence(_line_notes(_check_events(events, 1), 0), qpm)


def encode_voices(seq: NoteSequence, voices: int = 4, steps: int | None = None) -> np.ndarray:
    """(steps, voices) int64: column v holds the events of voice v's notes (notes of a voice
    that overlap: the later one wins; of notes starting together the highest); voices >=
    `voices` are left out. The token stream is `.reshape(-1)` (S A T B S A T B ...)."""
    steps = _steps(steps, seq.steps)
    out = np.zeros((steps, voices), dtype=np.int64)
    for v in range(voices):
        rows = seq.notes[seq.notes[:, 3] == v]  # sorted by (start, pitch)
        if len(rows):
            out[:, v] = _line_events(_one_line(rows), steps)
    return out


def decode_voices(events: Any, *, qpm: float = 120.0) -> NoteSequence:
    """The notes of (steps, voices) events, column v as voice v."""
    events = _check_events(events, 2)
    parts = [_line_notes(events[:, v], v) for v in range(events.shape[1])]
    return NoteSequence(np.concatenate([np.zeros((0, 4), dtype=np.int64), *parts]), qpm)


def pianoroll(seq: NoteSequence, steps: int | None = None) -> np.ndarray:
    """(steps, 128) bool: True where a note of that pitch sounds (any voice)."""
    roll = np.zeros((_steps(steps, seq.steps), 128), dtype=bool)
    for start, end, pitch, _ in seq.notes:
        roll[start:end, pitch] = True
    return roll


def pitch_name(pitch: int) -> str:
    """Scientific pitch notation with sharps: 60 -> "C4", 66 -> "F#4", 21 -> "A0"."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


# --- keys and melody statistics ---------------------------------------------------------------
# Krumhansl & Kessler (1982) probe-tone ratings of the 12 pitch classes above the tonic
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# the scale of a key, in semitones above the tonic; minor: natural minor and the leading tone
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10, 11)}
_KEY_SPELLING = {
    "major": ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"),
    "minor": ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"),
}


def estimate_key(seq: NoteSequence) -> tuple[int, str, float]:
    """(tonic pitch class 0..11, "major" | "minor", r): the Krumhansl-Schmuckler key finder.

    The duration-weighted pitch-class histogram is correlated (Pearson r) with the
    Krumhansl-Kessler profile of each of the 24 keys (the profile rotated to the tonic); the key
    of the highest r wins (ties: major first, then the lower tonic). With no notes, or all
    pitch classes equally long, there is no key: (0, "major", 0.0)."""
    weights = (seq.notes[:, 1] - seq.notes[:, 0]).astype(np.float64)
    histogram = np.bincount(seq.notes[:, 2] % 12, weights=weights, minlength=12)
    if histogram.std() == 0:
        return 0, "major", 0.0
    best = (0, "major", -2.0)
    for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        for tonic in range(12):
            r = float(np.corrcoef(histogram, np.roll(profile, tonic))[0, 1])
            if r > best[2]:
                best = (tonic, mode, r)
    return best


def key_name(tonic: int, mode: str) -> str:
    """ "C major", "F# minor", "Bb major" (the usual spelling of each key)."""
    return f"{_KEY_SPELLING[mode][tonic % 12]} {mode}"


def _melody_facts(events: np.ndarray) -> dict[str, float]:
    """The statistics of one melody's events (nan where a statistic is undefined for it)."""
    nan = math.nan
    pitches = _line_notes(events, 0)[:, 2]
    bars = len(events) / STEPS_PER_BAR
    facts = {
        "empty": float(len(pitches) == 0),
        "note_density": len(pitches) / bars if bars else nan,
    }
    if len(pitches):
        tonic, mode, _ = estimate_key(decode_melody(events))
        scale = np.array(SCALES[mode])
        runs = np.diff(np.flatnonzero(np.r_[True, np.diff(pitches) != 0, True]))  # equal pitches
        facts |= {
            "notes_in_key": float(np.isin((pitches - tonic) % 12, scale).mean()),
            "excessively_repeated": float(runs.max() > 4),
            "starts_with_tonic": float(pitches[0] % 12 == tonic),
            "pitch_range": float(pitches.max() - pitches.min()),
            "unique_pitches": float(len(np.unique(pitches))),
        }
    intervals = np.diff(pitches)
    if len(intervals):
        facts |= {
            "repeated_notes": float((intervals == 0).mean()),
            "leaps": float((np.abs(intervals) > 7).mean()),
            "mean_interval": float(np.abs(intervals).mean()),
        }
    leap, after = intervals[:-1], intervals[1:]
    resolved = (np.abs(after) <= 2) & (after != 0) & (np.sign(after) == -np.sign(leap))
    if (np.abs(leap) > 7).any():
        facts["resolved_leaps"] = float(resolved[np.abs(leap) > 7].mean())
    return facts


STATISTICS = (
    "notes_in_key",
    "repeated_notes",
    "excessively_repeated",
    "leaps",
    "resolved_leaps",
    "starts_with_tonic",
    "pitch_range",
    "note_density",
    "unique_pitches",
    "mean_interval",
    "empty",
)


def melody_statistics(events_batch: Iterable[Any]) -> dict[str, float]:
    """The RL Tuner's melody statistics (Jaques et al. 2017, Table 1) and a few basics, each the
    mean over the melodies (event sequences; START tokens are dropped) for which it is defined
    (nan when it is defined for none). "Notes" are note-ons, rests do not separate them, and an
    interval is the signed pitch difference of consecutive notes:

    - notes_in_key: the fraction of a melody's notes in the scale of its estimated key
      (estimate_key; major, or natural minor plus the leading tone); melodies with a note.
    - repeated_notes: the fraction of intervals that are 0 (a pitch struck again); melodies
      with two notes.
    - excessively_repeated: 1 if a melody strikes one pitch more than 4 times in a row (5 or
      more consecutive notes of the same pitch), else 0; melodies with a note.
    - leaps: the fraction of intervals larger than a fifth (|interval| > 7 semitones);
      melodies with two notes.
    - resolved_leaps: of the leaps followed by another interval, the fraction followed by a step
      (1 or 2 semitones) in the opposite direction; melodies with such a leap.
    - starts_with_tonic: 1 if the first note is the estimated key's tonic (any octave).
    - pitch_range: highest minus lowest pitch, in semitones; melodies with a note.
    - note_density: notes per 16-step bar of the melody's length; every melody of steps.
    - unique_pitches: the number of distinct pitches; melodies with a note.
    - mean_interval: the mean |interval| in semitones; melodies with two notes.
    - empty: the fraction of melodies without a note.
    """
    sums: dict[str, float] = dict.fromkeys(STATISTICS, 0.0)
    counts: dict[str, int] = dict.fromkeys(STATISTICS, 0)
    for events in events_batch:
        array = np.asarray(events).reshape(-1)
        facts = _melody_facts(_check_events(array[array != START], 1))
        for name, value in facts.items():
            if not math.isnan(value):
                sums[name] += value
                counts[name] += 1
    return {name: sums[name] / counts[name] if counts[name] else math.nan for name in STATISTICS}


# --- music21's corpus -------------------------------------------------------------------------
# The status of a corpus piece's meter, kept in its cache file (see _corpus_array)
_METER_STATUS = ("regular", "mixed", "irregular", "none", "unreadable")


def corpus_address(name: str) -> tuple[str, int | None]:
    """(music21 corpus path, tune number or None) of a piece name: a corpus path such as
    "bach/bwv269", or a path and a tune's reference number (X:) in an opus file such as the
    Essen folk songs' "essenFolksong/han1.abc#12"."""
    path, hash_sign, number = str(name).partition("#")
    if not path or (hash_sign and not number.isdigit()):
        raise GenlabError(f"not a corpus piece name: {name!r} (e.g. bach/bwv269, or file.abc#12)")
    return path, int(number) if hash_sign else None


def _score_rows(score: Any) -> np.ndarray:
    """(N, 4) float64 rows (onset, duration in quarter notes, MIDI pitch, part) of a music21
    score, ties merged; parts in the score's order (soprano first). Grace notes are left out."""
    rows = []
    for part, voice in enumerate(score.parts):
        for element in voice.flatten().stripTies().notes:
            duration = float(element.quarterLength)
            if duration > 0:  # grace notes take no time
                rows += [(float(element.offset), duration, p.midi, part) for p in element.pitches]
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def _parse_notes(name: str) -> np.ndarray:
    """(N, 4) float64 rows (onset, duration in quarter notes, MIDI pitch, part) of a chorale,
    ties merged; parts in the score's order (soprano first)."""
    from music21 import corpus

    rows = _score_rows(corpus.parse(name))
    if not len(rows):
        raise GenlabError(f"chorales-audio: {name} has no notes")
    return rows


def _meter(score: Any) -> tuple[int, int, int, float]:
    """(numerator, denominator, status index into _METER_STATUS, offset in quarter notes of the
    first full bar) of a score. Regular: one time signature, and every full bar starts a whole
    number of bars after the first full one (bars cut in two at a repeat sign are fine)."""
    from music21 import meter, stream

    signatures = {t.ratioString for t in score.recurse().getElementsByClass(meter.TimeSignature)}
    part = score.parts[0] if len(score.parts) else score
    measures = list(part.getElementsByClass(stream.Measure))
    if not signatures:
        return 0, 0, _METER_STATUS.index("none"), 0.0
    numerator, denominator = (int(x) for x in sorted(signatures)[0].split("/"))
    full = [m for m in measures if 0 < m.duration.quarterLength == m.barDuration.quarterLength]
    if not full:
        return numerator, denominator, _METER_STATUS.index("irregular"), 0.0
    first = full[0].offset
    if len(signatures) > 1:
        status = "mixed"
    elif any((m.offset - first) % m.barDuration.quarterLength for m in full):
        status = "irregular"
    else:
        status = "regular"
    return numerator, denominator, _METER_STATUS.index(status), float(first)


def _parse_corpus(name: str) -> np.ndarray:
    """A corpus piece as its cache array (see _corpus_array)."""
    from music21 import corpus

    path, number = corpus_address(name)
    try:
        corpus.getWork(path)
    except Exception:  # music21's CorpusException
        raise GenlabError(f"{name}: no such piece in music21's corpus") from None
    try:
        # forceSource: genlab caches the notes itself; music21's own pickle would double the work
        score = corpus.parse(path, number=number, forceSource=True)
        rows = _score_rows(score)
        numerator, denominator, status, first_bar = _meter(score)
    except Exception:  # music21 raises many types on a tune it cannot read
        return np.array([[0, 0, _METER_STATUS.index("unreadable"), 0]], dtype=np.int64)
    shift = -round(first_bar * STEPS_PER_QUARTER) % STEPS_PER_BAR  # pickup -> rests before it
    notes = quantize(rows).notes + np.array([shift, shift, 0, 0])
    return np.concatenate([[[numerator, denominator, status, shift]], notes]).astype(np.int64)


def _corpus_array(name: str) -> np.ndarray:
    """(N + 1, 4) int64, cached: row 0 (meter numerator, denominator, status index into
    _METER_STATUS, downbeat shift in steps), then the piece's quantized notes, shifted."""
    corpus_address(name)  # a malformed name is an error before any cache is looked at
    slug = re.sub(r"[^A-Za-z0-9.]+", "_", name)
    return _cached(
        f"{slug}.v{CORPUS_CACHE_VERSION}.npy", lambda: _parse_corpus(name), folder="music"
    )


def corpus_meter(name: str) -> str:
    """The meter of a corpus piece: its time signature ("4/4", "3/4", ...) when it has one and
    its bars are regular (see _meter); "mixed" (several time signatures), "irregular" (a full
    bar off the grid of bars), "none" (no time signature) or "unreadable" (music21 cannot parse
    it) otherwise. The music datasets keep FOUR_FOUR_METERS."""
    numerator, denominator, status, _ = _corpus_array(name)[0]
    if status:
        return _METER_STATUS[status]
    return f"{numerator}/{denominator}"


def corpus_sequence(name: str) -> NoteSequence:
    """A piece of music21's corpus (a name as corpus_address reads it), quantized (qpm 120),
    shifted so that its first full bar starts on a multiple of STEPS_PER_BAR (a pickup bar
    becomes rests before it). Parsed once, then read from genlab's cache
    ($GENLAB_CACHE_DIR/music). A piece music21 cannot parse is a GenlabError."""
    array = _corpus_array(name)
    if _METER_STATUS[array[0, 2]] == "unreadable":
        raise GenlabError(f"{name}: music21 cannot parse this piece")
    return NoteSequence(array[1:])


# --- the cache --------------------------------------------------------------------------------
def _cache_folder(folder: str = "audio") -> Path:
    from genlab.data.download import cache_dir

    return cache_dir() / folder


def _cached(name: str, make: Callable[[], np.ndarray], folder: str = "audio") -> np.ndarray:
    """The array cached as `name` (.npy) in genlab's cache (`folder` under it), made by
    `make()` and saved (a temporary file, then a rename) when absent or unreadable. A cache that
    cannot be written costs time, not correctness: a warning, and the array is returned."""
    path = _cache_folder(folder) / name
    if path.is_file():
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):  # damaged or half-written by an old version: remake
            pass
    array = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".npy", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        warnings.warn(f"cannot cache {name} in {path.parent}: {e.strerror}", stacklevel=2)
    return array


# --- audio ------------------------------------------------------------------------------------
# the timbre of each voice (part % 4): amplitude of harmonic k = 1..24
_K = np.arange(1, 25, dtype=np.float64)
VOICE_HARMONICS = (
    _K**-1.5,  # soprano: soft, flute-like
    np.where(_K % 2 == 1, 1 / _K, 0.1 / _K),  # alto: odd harmonics, clarinet-like
    0.75 ** (_K - 1),  # tenor: a steep rolloff
    1 / _K,  # bass: sawtooth-like, reedy
)


def _additive(notes: np.ndarray, sample_rate: int, tempo: float, seed: int) -> np.ndarray:
    """Play `notes` (rows of _parse_notes) at `tempo` seconds per quarter note: each note a
    harmonic series of its voice's timbre (harmonics below 0.45 sample_rate), an envelope
    (30 ms attack, 100 ms decay to 70%, 80 ms release), vibrato (5 Hz, up to 0.1 semitone, a
    random phase), a random detuning of a few cents and a little white breath noise (-46 dB)."""
    rng = np.random.default_rng(seed)
    release = 0.08
    total = notes[:, 0] + notes[:, 1]
    out = np.zeros(math.ceil((total.max() * tempo + release) * sample_rate) + 1)
    for onset, duration, pitch, part in notes:
        gate = duration * tempo
        t = np.arange(round((gate + release) * sample_rate)) / sample_rate  # (n,)
        attack, decay = min(0.03, gate / 3), min(0.1, gate / 3)
        envelope = np.interp(
            t, [0, attack, attack + decay, gate, gate + release], [0, 1, 0.7, 0.7, 0]
        )
        cents = rng.uniform(-4, 4)
        f0 = 440.0 * 2.0 ** ((pitch - 69 + cents / 100) / 12)
        vibrato = rng.uniform(0, 0.1) * np.sin(2 * np.pi * 5 * t + rng.uniform(0, 2 * np.pi))
        phase = 2 * np.pi * np.cumsum(f0 * 2.0 ** (vibrato / 12)) / sample_rate  # (n,)
        amplitudes = VOICE_HARMONICS[int(part) % 4] * (_K * f0 < 0.45 * sample_rate)
        amplitudes = amplitudes / max(amplitudes.sum(), 1e-9)
        offsets = rng.uniform(0, 2 * np.pi, len(_K))
        tone = amplitudes @ np.sin(_K[:, None] * phase + offsets[:, None])  # (n,)
        breath = 0.005 * rng.standard_normal(len(t))  # about -46 dB below the note
        start = round(onset * tempo * sample_rate)
        out[start : start + len(t)] += 0.22 * envelope * (tone + breath)
    return np.clip(out, -1, 1).astype(np.float32)


def _soundfont() -> str | None:
    return next((path for path in SOUNDFONTS if Path(path).is_file()), None)


def _fluidsynth(
    notes: np.ndarray, sample_rate: int, tempo: float, *, where: str = "chorales-audio: "
) -> np.ndarray:
    """`notes` played by FluidSynth (a subprocess) with the first soundfont of SOUNDFONTS;
    `where` starts the error messages."""
    from genlab.sound import load_audio

    program, soundfont = shutil.which("fluidsynth"), _soundfont()
    if program is None or soundfont is None:
        raise GenlabError(
            f"{where}synth fluidsynth needs the fluidsynth program and a General MIDI "
            f"soundfont (one of {', '.join(SOUNDFONTS)}); use synth additive"
        )
    with tempfile.TemporaryDirectory() as folder:
        midi, wav = Path(folder) / "in.mid", Path(folder) / "out.wav"
        midi.write_bytes(_midi_file(notes, tempo))
        command = [program, "-ni", "-g", "0.8", "-F", str(wav), "-r", str(sample_rate)]
        done = subprocess.run(
            [*command, soundfont, str(midi)], capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0 or not wav.is_file():
            why = (done.stderr or done.stdout).strip().splitlines()
            raise GenlabError(f"{where}fluidsynth failed: {why[-1] if why else '?'}")
        return load_audio(wav, sample_rate, name="fluidsynth output")


def render(
    seq: NoteSequence, sample_rate: int = 16000, *, synth: str = "additive", seed: int = 0
) -> np.ndarray:
    """`seq` as float32 audio in [-1, 1] at seq.qpm: synth "additive" (each voice its own
    harmonic timbre, seeded by `seed`) or "fluidsynth" (a General MIDI church organ, needs the
    fluidsynth program and a soundfont). No notes: no samples."""
    if synth not in SYNTHS:
        raise GenlabError(f"unknown synth {synth!r}; use {' or '.join(SYNTHS)}")
    if not len(seq):
        return np.zeros(0, dtype=np.float32)
    rows, tempo = _quarter_rows(seq), 60.0 / seq.qpm
    if synth == "additive":
        return _additive(rows, sample_rate, tempo, seed)
    return _fluidsynth(rows, sample_rate, tempo, where="")


def pianoroll_figure(
    seqs: Sequence[NoteSequence], path: str | Path, *, titles: Sequence[str] | None = None
) -> Path:
    """A PNG piano roll: one panel per sequence, pitch against step, a line at every bar
    (16 steps), each voice in its own colour. Written atomically; the folder is made."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seqs = list(seqs)
    if not seqs:
        raise GenlabError("no note sequences to draw")
    titles = list(titles) if titles is not None else [f"sample {i}" for i in range(len(seqs))]
    fig, axes = plt.subplots(len(seqs), 1, figsize=(10, 2.2 * len(seqs)), squeeze=False)
    colours = plt.get_cmap("tab10").colors
    for ax, seq, title in zip(axes[:, 0], seqs, titles, strict=False):
        steps = max(seq.steps, STEPS_PER_BAR)
        for bar in range(0, steps + 1, STEPS_PER_BAR):
            ax.axvline(bar, color="0.85", linewidth=0.6, zorder=0)
        for v in np.unique(seq.notes[:, 3]):
            start, end, pitch, _ = seq.notes[seq.notes[:, 3] == v].T
            ax.barh(pitch, end - start, left=start, height=0.8, color=colours[v % 10])
        low, high = (seq.notes[:, 2].min(), seq.notes[:, 2].max()) if len(seq) else (60, 72)
        ax.set_xlim(0, steps)
        ax.set_ylim(low - 2, high + 2)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("MIDI pitch")
    axes[-1, 0].set_xlabel("step (sixteenth notes; a line at every bar)")
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return path


# --- the event tokenizer ----------------------------------------------------------------------
def _symbols() -> tuple[str, ...]:
    """The text of each event id: "_" (NO_EVENT), "off", note names "A0".."C8", "<s>"."""
    notes = tuple(pitch_name(p) for p in range(MIN_PITCH, MAX_PITCH + 1))
    return ("_", "off", *notes, "<s>")


SYMBOLS = _symbols()


class _SymbolStreamDecoder:
    """Each pushed id as " " + its symbol, so the text streamed after a prompt joins on: prompt
    + pushes == decode(prompt ids + new ids)."""

    def __init__(self, tokenizer: EventTokenizer):
        self._tokenizer = tokenizer

    def push(self, token_id: int) -> str:
        return " " + self._tokenizer.decode([token_id])

    def flush(self) -> str:
        return ""


class EventTokenizer:
    """genlab's tokenizer (genlab.tokenizers.Tokenizer) over the 91 music event ids, and a
    FileTokenizer whose files are MIDI: kind "melody" (voices 1) or "chorale" (voices > 1,
    the four-voice chorales: one id per voice per step, S A T B S A T B ...).

    Text: the symbols of the ids separated by single spaces: "_" (NO_EVENT), "off" (NOTE_OFF),
    "<s>" (START), a note-on as its pitch name with sharps and octave ("C4" = MIDI 60, "F#5").
    encode splits at any whitespace; decode joins with single spaces; the stream decoder gives
    " " + symbol per id (pushes + flush == " " + decode(ids), for ids not empty).
    """

    file_suffix = ".mid"
    steps_per_bar = STEPS_PER_BAR
    start_id = START

    def __init__(self, voices: int = 1):
        if isinstance(voices, bool) or not isinstance(voices, int) or not 1 <= voices <= 15:
            raise GenlabError(f"voices must be an integer 1..15, got {voices!r}")
        self.voices = voices
        self._index = {symbol: i for i, symbol in enumerate(SYMBOLS)}

    @property
    def kind(self) -> str:
        return "melody" if self.voices == 1 else "chorale"

    @property
    def vocab_size(self) -> int:
        return VOCAB_SIZE

    def encode(self, text: str) -> list[int]:
        ids = []
        for symbol in text.split():
            if symbol not in self._index:
                raise GenlabError(
                    f"unknown music event {symbol!r}: events are _, off, <s> and notes A0..C8 "
                    "written with sharps, such as C4 or F#5"
                )
            ids.append(self._index[symbol])
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        checked = [int(i) for i in ids]
        for i in checked:
            if not 0 <= i < VOCAB_SIZE:
                raise GenlabError(f"token id {i} is out of range for a vocabulary of {VOCAB_SIZE}")
        return " ".join(SYMBOLS[i] for i in checked)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "voices": self.voices}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EventTokenizer:
        """The tokenizer `to_dict` described (genlab.tokenizers.FIXED_KINDS looks it up)."""
        voices = d.get("voices", 1 if d.get("kind") == "melody" else 4)
        tokenizer = cls(voices)
        if tokenizer.kind != d.get("kind"):
            raise GenlabError(f"a {d.get('kind')} tokenizer cannot have {voices} voices")
        return tokenizer

    def to_hugging_face(self) -> tokenizers.Tokenizer:
        """A WordLevel model over the symbols after a whitespace split; with no decoder set,
        `tokenizers` joins the symbols with single spaces, as decode does. No unknown token: an
        unknown symbol is an error there too."""
        from tokenizers import Tokenizer, models, pre_tokenizers

        vocab = {symbol: i for i, symbol in enumerate(SYMBOLS)}
        tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
        tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        return tokenizer

    def stream_decoder(self) -> _SymbolStreamDecoder:
        return _SymbolStreamDecoder(self)

    # --- music ------------------------------------------------------------------------------
    def to_sequence(self, ids: Iterable[int], *, qpm: float = 120.0) -> NoteSequence:
        """The notes of a token stream: START tokens dropped, cut to whole steps (a multiple of
        `voices` tokens), then decode_melody or decode_voices."""
        array = np.asarray([int(i) for i in ids], dtype=np.int64)
        array = array[array != START]
        array = array[: len(array) // self.voices * self.voices]
        if self.voices == 1:
            return decode_melody(array, qpm=qpm)
        return decode_voices(array.reshape(-1, self.voices), qpm=qpm)

    def from_sequence(self, seq: NoteSequence) -> list[int]:
        """The tokens of `seq` over whole bars (rests fill the last one): its top line
        (encode_melody) for a melody tokenizer, its voices (encode_voices) otherwise."""
        steps = -(-seq.steps // STEPS_PER_BAR) * STEPS_PER_BAR
        if self.voices == 1:
            return encode_melody(seq, steps).tolist()
        return encode_voices(seq, self.voices, steps).reshape(-1).tolist()

    def write_file(self, ids: Any, path: str | Path) -> Path:
        """Write token ids as a MIDI file (to_sequence, write_midi). `ids` is one stream, or
        several (a batch of samples: a list of lists, a 2-D array): those are played one after
        another, each starting on the first bar line after the one before."""
        return write_midi(self.song(ids), path)

    def file_bytes(self, ids: Any) -> bytes:
        """The MIDI file write_file writes, as bytes."""
        return midi_bytes(self.song(ids))

    def render_audio(self, ids: Any, sample_rate: int) -> np.ndarray:
        """The song of `ids` played by the additive synthesizer (render)."""
        return render(self.song(ids), sample_rate)

    def statistics(self, streams: Any) -> dict[str, float]:
        """melody_statistics of token streams (tokenizers.SequenceStatistics): START tokens
        dropped, then each stream's melody: its only voice, or a chorale's top voice (soprano,
        the first of every step's `voices` ids)."""
        melodies = []
        for row in _streams(streams):
            array = np.asarray([int(i) for i in row], dtype=np.int64)
            array = array[array != START]
            melodies.append(array[: len(array) // self.voices * self.voices][:: self.voices])
        return melody_statistics(melodies)

    def song(self, ids: Any) -> NoteSequence:
        """The notes of one token stream or several played one after another (write_file)."""
        parts, offset = [], 0
        for row in _streams(ids):
            seq = self.to_sequence(row)
            parts.append(seq.notes + np.array([offset, offset, 0, 0]))
            steps = sum(1 for i in row if int(i) != START) // self.voices
            offset += -(-steps // STEPS_PER_BAR) * STEPS_PER_BAR
        return NoteSequence(np.concatenate([np.zeros((0, 4), dtype=np.int64), *parts]))


def _streams(ids: Any) -> list[list[int]]:
    """One token stream or several (a list of lists, a 2-D array or tensor) as lists of ids."""
    rows = list(ids.tolist() if isinstance(ids, np.ndarray) or _is_tensor(ids) else ids)
    if rows and isinstance(rows[0], list | tuple | np.ndarray):
        return [[int(i) for i in row] for row in rows]
    return [[int(i) for i in rows]]


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and callable(getattr(value, "tolist", None))
