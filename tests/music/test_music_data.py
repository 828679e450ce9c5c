"""The music datasets: windows of event tokens from music21's corpus (a few pieces each) and
from MIDI files the tests write."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from genlab.data import dataset_spec, list_datasets, load_dataset
from genlab.data.music import EventDataset, folk_names, piece_splits
from genlab.errors import GenlabError
from genlab.notes import (
    MAX_PITCH,
    MIN_PITCH,
    START,
    EventTokenizer,
    NoteSequence,
    encode_melody,
    melody,
    read_midi,
    write_midi,
)


def every(data) -> tuple[torch.Tensor, torch.Tensor]:
    return data.batch(torch.arange(len(data)))


def has_note(y: torch.Tensor) -> torch.Tensor:
    return (y >= 2).any(dim=1)


def song(bars: int, *, seed: int = 0, silent: tuple[int, ...] = ()) -> NoteSequence:
    """A melody of quarter notes filling `bars` 4/4 bars but the `silent` ones, voice 0."""
    rng = np.random.default_rng(seed)
    rows = [
        (4 * q, 4 * q + 4, int(rng.integers(55, 80)), 0)
        for q in range(4 * bars)
        if q // 4 not in silent
    ]
    return NoteSequence(np.array(rows, dtype=np.int64))


# --- windows ----------------------------------------------------------------------------------
def test_bach_melody_windows_are_shifted_pairs_starting_with_start():
    train = load_dataset("bach-melodies", "train", pieces=8)
    assert isinstance(train, EventDataset)
    spec = train.spec
    assert spec.kind == "text" and spec.shape == (32,) and spec.vocab_size == 91
    assert spec.extra["steps_per_bar"] == 16 and spec.extra["voices"] == 1
    assert spec.extra["bars"] == 2 and isinstance(spec.extra["tokenizer"], EventTokenizer)
    assert spec.extra["skipped"] == {"irregular": 1}  # bwv4.8: its bar lines move
    x, y = every(train)
    assert x.shape == y.shape == (len(train), 32) and x.dtype == y.dtype == torch.int64
    assert (x[:, 0] == START).all() and torch.equal(x[:, 1:], y[:, :-1])
    assert (y < START).all() and has_note(y).all()  # windows of rests only are left out
    values = dataset_spec("bach-melodies", pieces=8).config_values()
    assert values["vocab_size"] == 91 and values["block_size"] == 32
    assert values["bar_length"] == 16


def test_batches_are_a_pure_function_of_the_indices():
    a = load_dataset("bach-melodies", "train", pieces=8, transpose=3)
    b = load_dataset("bach-melodies", "train", pieces=8, transpose=3)
    order = torch.randperm(len(a), generator=torch.Generator().manual_seed(0))[:50]
    for first, second in zip(a.batch(order), b.batch(order), strict=True):
        assert torch.equal(first, second)
    _, y = a.batch(order)
    singles = [a.batch(order[i : i + 1])[1] for i in range(len(order))]
    assert torch.equal(torch.cat(singles), y)


def test_transposition_gives_every_shift_in_range():
    plain = load_dataset("bach-melodies", "train", pieces=8)
    moved = load_dataset("bach-melodies", "train", pieces=8, transpose=2)
    # the sopranos lie well inside 21..108: every window gets all five shifts -2..2, in order
    assert len(moved) == 5 * len(plain)
    _, base = every(plain)
    _, shifted = every(moved)
    shifted = shifted.reshape(len(plain), 5, 32)
    for k, shift in enumerate(range(-2, 3)):
        expected = torch.where(base >= 2, base + shift, base)
        assert torch.equal(shifted[:, k], expected)
    wide = load_dataset("bach-melodies", "train", pieces=8, transpose=45)
    _, y = every(wide)
    notes = y[y >= 2] - 2 + MIN_PITCH
    assert notes.min() == MIN_PITCH and notes.max() == MAX_PITCH  # the extremes are reached
    # a window of pitches lo..hi gets the shifts 21 - lo .. 108 - hi within -45..45
    on = base >= 2
    lo = torch.where(on, base, 99).min(dim=1).values - 2 + MIN_PITCH
    hi = torch.where(on, base, -1).max(dim=1).values - 2 + MIN_PITCH
    counts = (hi.neg() + MAX_PITCH).clamp(max=45) - (MIN_PITCH - lo).clamp(min=-45) + 1
    assert torch.equal(wide.offsets.diff(), counts) and (counts < 91).all()
    for split in ("val", "test"):  # never transposed
        assert len(load_dataset("bach-melodies", split, pieces=8, transpose=2)) == len(
            load_dataset("bach-melodies", split, pieces=8)
        )


def test_bars_option_and_val_test_hop():
    for bars in (1, 4):
        data = load_dataset("bach-melodies", "train", pieces=8, bars=bars)
        assert data.spec.shape == (16 * bars,) and data.steps == 16 * bars
        assert every(data)[0].shape[1] == 16 * bars
    train = load_dataset("bach-melodies", "train", pieces=8)
    hops = set((train.starts[1:] - train.starts[:-1]).tolist())
    assert 16 in hops  # a window at every bar
    for split in ("val", "test"):
        held = load_dataset("bach-melodies", split, pieces=8)
        assert ((held.starts[1:] - held.starts[:-1]) >= 32).all()  # windows do not overlap
        assert (held.starts % 16 == 0).all() and len(held) > 0


def test_chorales_interleave_four_voices():
    data = load_dataset("chorales", "train", pieces=8)
    spec = data.spec
    assert spec.shape == (128,) and spec.extra["voices"] == 4
    assert spec.extra["tokenizer"].to_dict() == {"kind": "chorale", "voices": 4}
    assert spec.config_values()["bar_length"] == 64
    assert spec.extra["skipped"] == {"irregular": 1, "not 4 voices": 1}  # bwv8.6 has 5 parts
    x, y = every(data)
    assert (x[:, 0] == START).all() and torch.equal(x[:, 1:], y[:, :-1])
    steps = y.reshape(len(y), 32, 4)  # (windows, steps, voices)
    sounding = steps >= 2
    assert sounding[:, :, 0].any() and sounding[:, :, 3].any()
    pitch = torch.where(sounding, steps - 2 + MIN_PITCH, torch.zeros_like(steps)).float()
    mean = pitch.sum(dim=(0, 1)) / sounding.sum(dim=(0, 1))
    assert (mean[:-1] > mean[1:]).all()  # soprano above alto above tenor above bass
    # the soprano column is bach-melodies' melody (the same pieces in the same splits)
    melodies = set(map(tuple, every(load_dataset("bach-melodies", "train", pieces=8))[1].tolist()))
    sopranos = {tuple(w) for w in steps[:, :, 0].tolist() if max(w) >= 2}
    assert sopranos <= melodies and len(sopranos) > len(melodies) / 2


def test_pieces_are_split_by_name():
    names = [f"piece{i}" for i in range(200)]
    splits = piece_splits(names)
    assert sorted(i for part in splits.values() for i in part) == list(range(200))
    assert 10 <= len(splits["val"]) <= 30 and 10 <= len(splits["test"]) <= 30
    bigger = piece_splits([*names, *(f"more{i}" for i in range(100))])
    for split, indices in splits.items():  # more pieces never move a piece
        assert set(indices) <= set(bigger[split])
    for n in (3, 4, 5):
        few = piece_splits(names[:n])
        assert all(few[s] for s in ("train", "val", "test"))
        assert sorted(i for part in few.values() for i in part) == list(range(n))
    assert piece_splits(["a", "b"]) == {"train": [0], "val": [1], "test": [1]}
    data = {s: load_dataset("bach-melodies", s, pieces=8) for s in ("train", "val", "test")}
    seen = [set(map(tuple, every(d)[1].tolist())) for d in data.values()]
    assert not seen[1] & seen[2]  # val and test pieces differ here
    joined = load_dataset("bach-melodies", "train+val", pieces=8)
    assert len(joined) == len(data["train"]) + len(data["val"])


def test_melodies_join_bach_and_folk_with_the_same_splits():
    both = load_dataset("melodies", "val", pieces=8)  # the name-sorted list starts with Bach
    bach = load_dataset("bach-melodies", "val", pieces=8)
    assert torch.equal(every(both)[1], every(bach)[1])
    names = folk_names()
    assert len(names) > 8000 and names[0] == "essenFolksong/altdeu10.abc#1"
    assert not any("/test" in name for name in names)


def test_folk_melodies_keep_four_four_tunes():
    data = load_dataset("folk-melodies", "train", pieces=40)
    skipped = data.spec.extra["skipped"]
    assert sum(skipped.values()) == 37 and "3/4" in skipped and "6/8" in skipped
    x, y = every(data)
    assert x.shape[1] == 32 and has_note(y).all()


def test_options_are_checked():
    with pytest.raises(GenlabError, match="bars must be between 1"):
        load_dataset("bach-melodies", bars=0)
    with pytest.raises(GenlabError, match="transpose must be"):
        load_dataset("bach-melodies", transpose=-1)
    with pytest.raises(GenlabError, match="pieces must be between 1"):
        load_dataset("chorales", pieces=0)
    with pytest.raises(GenlabError, match="unknown option 'bar'"):
        load_dataset("melodies", bar=2)
    with pytest.raises(GenlabError, match="no test piece is 64 bars long"):
        load_dataset("bach-melodies", "test", pieces=3, bars=64)
    with pytest.raises(GenlabError, match="none of the first 3 pieces"):
        load_dataset("folk-melodies", pieces=3)
    names = [name for name, _ in list_datasets()]
    assert {"bach-melodies", "folk-melodies", "melodies", "chorales", "midi:PATH"} <= set(names)
    with pytest.raises(GenlabError, match=r"e\.g\. midi:"):
        load_dataset("midi:")


# --- midi:PATH --------------------------------------------------------------------------------
def test_midi_folder_skips_bad_files_with_one_warning(tmp_path):
    (tmp_path / "sub").mkdir()
    write_midi(song(8, seed=1), tmp_path / "a.mid")
    write_midi(song(8, seed=2), tmp_path / "sub" / "b.MIDI")
    (tmp_path / "c.mid").write_bytes(b"not a midi file at all")
    (tmp_path / "notes.txt").write_text("ignored")
    with pytest.warns(UserWarning, match=r"skipped 1 of 3 MIDI files .*first: c\.mid") as caught:
        train = load_dataset(f"midi:{tmp_path}", "train")
    assert len(caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # read once: no second warning for another split
        val = load_dataset(f"midi:{tmp_path}", "val")
    assert train.spec.shape == (32,) and train.spec.extra["voices"] == 1
    assert len(train) == 7 and len(val) == 4  # 8 bars: 7 windows at every bar, 4 apart
    x, y = every(train)
    assert (x[:, 0] == START).all() and has_note(y).all()
    assert not set(map(tuple, y.tolist())) & set(map(tuple, every(val)[1].tolist()))


def test_midi_folder_of_bad_files_is_an_error(tmp_path):
    (tmp_path / "a.mid").write_bytes(b"")
    (tmp_path / "b.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01")
    with pytest.raises(GenlabError, match="none of its 2 MIDI files could be read"):
        load_dataset(f"midi:{tmp_path}")
    with pytest.raises(GenlabError, match="no such file or folder"):
        load_dataset(f"midi:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenlabError, match="no MIDI files"):
        load_dataset(f"midi:{tmp_path / 'empty'}")


def test_one_midi_file_is_split_by_time_and_silent_windows_dropped(tmp_path):
    chords = song(20, silent=(3, 4, 5))  # 20 bars, bars 3..5 rests
    two_voices = NoteSequence(
        np.concatenate([chords.notes, chords.transpose(-12).notes + np.array([0, 0, 0, 1])])
    )
    path = write_midi(two_voices, tmp_path / "one.mid")
    sizes = {}
    for split in ("train", "val", "test"):
        data = load_dataset(f"midi:{path}", split, bars=2)
        sizes[split] = len(data)
        assert has_note(every(data)[1]).all()
    # train: bars 0..15 (15 windows) less the two inside the rests (3-4, 4-5); val: bars 16-17;
    # test: bars 18-19
    assert sizes == {"train": 13, "val": 1, "test": 1}
    _, y = every(load_dataset(f"midi:{path}", "train", bars=2))
    top = encode_melody(melody(read_midi(path)), 32)
    assert torch.equal(y[0], torch.from_numpy(top))  # the top line, from the start
