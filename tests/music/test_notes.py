"""genlab.notes: note sequences, MIDI files, events, the skyline, keys, melody statistics,
rendering and the event tokenizer, on sequences the tests build (and two corpus pieces)."""

from __future__ import annotations

import json
import math
import shutil

import mido
import numpy as np
import pytest

from genlab import notes
from genlab.errors import GenlabError
from genlab.notes import (
    NO_EVENT,
    NOTE_OFF,
    START,
    EventTokenizer,
    NoteSequence,
    corpus_meter,
    corpus_sequence,
    decode_melody,
    decode_voices,
    encode_melody,
    encode_voices,
    estimate_key,
    key_name,
    melody,
    melody_statistics,
    midi_bytes,
    pianoroll,
    pianoroll_figure,
    quantize,
    read_midi,
    render,
    write_midi,
)
from genlab.tokenizers import (
    FileTokenizer,
    Tokenizer,
    load_tokenizer,
    save_tokenizer,
    tokenizer_from_dict,
)


def seq(*rows, qpm: float = 120.0) -> NoteSequence:
    """A sequence from (start, end, pitch, voice) step rows."""
    return NoteSequence(np.array(rows, dtype=np.int64).reshape(-1, 4), qpm)


def on(pitch: int) -> int:
    return 2 + pitch - 21


def random_sequence(rng: np.random.Generator, voices: int, n: int = 40) -> NoteSequence:
    """Random off-grid notes in several voices, quantized."""
    rows = np.stack(
        [
            rng.uniform(0, 40, n),
            rng.uniform(0.05, 3, n),
            rng.integers(30, 100, n),
            rng.integers(0, voices, n),
        ],
        axis=1,
    )
    return quantize(rows, qpm=float(rng.choice([60, 90, 120, 150])))


def random_melody(rng: np.random.Generator, steps: int = 64) -> NoteSequence:
    """A monophonic in-range melody with rests and repeated notes, inside `steps`."""
    rows, t = [], int(rng.integers(0, 4))
    while True:
        length = int(rng.integers(1, 9))
        if t + length > steps:
            break
        pitch = rows[-1][2] if rows and rng.random() < 0.2 else int(rng.integers(21, 109))
        rows.append((t, t + length, pitch, 0))
        t += length + int(rng.integers(0, 3)) * int(rng.random() < 0.4)
    return seq(*rows)


# --- note sequences ---------------------------------------------------------------------------
def test_note_sequence_sorts_validates_and_compares():
    s = seq((4, 8, 64, 1), (0, 4, 60, 1), (0, 2, 67, 0), (0, 4, 55, 1))
    assert s.notes.tolist() == [[0, 2, 67, 0], [0, 4, 55, 1], [0, 4, 60, 1], [4, 8, 64, 1]]
    assert len(s) == 4 and s.steps == 8 and s.qpm == 120.0
    assert not s.notes.flags.writeable
    assert s == seq(*s.notes.tolist()) and s != seq(*s.notes.tolist(), qpm=100)
    assert s.voice(1).notes[:, 3].tolist() == [1, 1, 1] and len(s.voice(5)) == 0
    assert s.transpose(-5).notes[:, 2].tolist() == [62, 50, 55, 59]
    assert seq().steps == 0 and len(seq()) == 0
    for rows, message in [
        ([(3, 3, 60, 0)], "end after it starts"),
        ([(-1, 3, 60, 0)], "before step 0"),
        ([(0, 3, 128, 0)], "0..127"),
        ([(0, 3, 60, -1)], "voices"),
    ]:
        with pytest.raises(GenlabError, match=message):
            seq(*rows)
    with pytest.raises(GenlabError, match=r"0\.\.127"):
        s.transpose(80)
    with pytest.raises(GenlabError, match="whole steps"):
        NoteSequence(np.array([[0.5, 2, 60, 0]]))


def test_quantize_rounds_off_grid_onsets_to_sixteenths():
    s = quantize(
        [
            (0.1, 0.9, 60, 0),  # 0.4 -> 0, 4.0 -> 4
            (0.13, 0.01, 62, 0),  # 0.52 -> 1 and 0.56 -> 1: no length, so one step
            (1.125, 1.0, 64, 0),  # 4.5 -> 5 (halves up), 8.5 -> 9
            (2.0, 1.0, 65, 1),  # the same start, pitch and voice twice: the longest stays
            (2.01, 2.0, 65, 1),
            (3.0, 2.0, 67, 2),  # still sounding when 67 starts again in voice 2: cut there
            (4.0, 0.5, 67, 2),
        ]
    )
    assert s.notes.tolist() == [
        [0, 4, 60, 0],
        [1, 2, 62, 0],
        [5, 9, 64, 0],
        [8, 16, 65, 1],
        [12, 16, 67, 2],
        [16, 18, 67, 2],
    ]
    with pytest.raises(GenlabError, match="durations"):
        quantize([(0, -1, 60, 0)])


# --- MIDI files -------------------------------------------------------------------------------
def test_midi_round_trip_of_several_voices(tmp_path):
    s = seq((0, 4, 60, 0), (0, 8, 48, 1), (4, 6, 62, 0), (4, 5, 62, 0 + 2), (6, 7, 62, 0),
            (2, 3, 100, 3), (16, 32, 36, 3), qpm=90)  # fmt: skip
    path = write_midi(s, tmp_path / "sub" / "song.mid")
    assert path.read_bytes() == midi_bytes(s) and midi_bytes(s)[8:10] == b"\x00\x01"  # format 1
    back = read_midi(path)
    assert back == s and back.qpm == 90.0
    rng = np.random.default_rng(0)
    for k in range(6):  # random quantized sequences, 1 to 4 voices, random tempi
        original = random_sequence(rng, voices=1 + k % 4)
        assert read_midi(write_midi(original, tmp_path / f"r{k}.mid")) == original
    gaps = seq((0, 4, 60, 2), (0, 4, 64, 7))  # voice numbers survive through the track names
    assert read_midi(write_midi(gaps, tmp_path / "gaps.mid")) == gaps
    with pytest.raises(GenlabError, match=r"voices 0\.\.14"):
        midi_bytes(seq((0, 1, 60, 15)))
    with pytest.raises(GenlabError, match="program"):
        midi_bytes(s, program=128)
    with pytest.raises(GenlabError, match="tempo of 2 qpm"):
        midi_bytes(seq((0, 1, 60, 0), qpm=2))


def test_read_midi_goes_through_the_tempo_map(tmp_path):
    """Times are quarter notes (tick / resolution), whatever the tempo changes; qpm is the
    first tempo; a drum track is left out; instruments are voices in the file's order."""
    midi = mido.MidiFile(type=1, ticks_per_beat=96)
    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100), time=0),
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(40), time=96),
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(200), time=96),
        ]
    )
    piano = mido.MidiTrack(
        [
            mido.Message("note_on", note=60, velocity=90, time=0),
            mido.Message("note_off", note=60, time=96),  # a quarter at 100 qpm
            mido.Message("note_on", note=62, velocity=90, time=0),
            mido.Message("note_off", note=62, time=144),  # 1.5 quarters across 40 and 200 qpm
        ]
    )
    flute = mido.MidiTrack(
        [
            mido.Message("program_change", channel=1, program=73, time=0),
            mido.Message("note_on", channel=1, note=79, velocity=90, time=24),  # step 1
            mido.Message("note_off", channel=1, note=79, time=37),  # 61 ticks: 2.54 -> 3 steps
        ]
    )
    drums = mido.MidiTrack(
        [
            mido.Message("note_on", channel=9, note=36, velocity=90, time=0),
            mido.Message("note_off", channel=9, note=36, time=96),
        ]
    )
    midi.tracks += [conductor, piano, flute, drums]
    midi.save(tmp_path / "tempi.mid")
    s = read_midi(tmp_path / "tempi.mid")
    assert s.qpm == 100.0
    assert s.notes.tolist() == [[0, 4, 60, 0], [1, 3, 79, 1], [4, 10, 62, 0]]


def test_bad_midi_files_are_one_line_errors(tmp_path):
    (tmp_path / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02garbage")
    (tmp_path / "empty.mid").write_bytes(b"")
    drums = seq((0, 4, 36, 9))
    (tmp_path / "drums.mid").write_bytes(midi_bytes(drums))  # voice 9 -> channel 10, not drums
    silent = mido.MidiFile()
    silent.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    silent.save(tmp_path / "silent.mid")
    for name, reason in [
        ("corrupt.mid", "not a readable MIDI file"),
        ("empty.mid", "empty"),
        ("missing.mid", "no such MIDI file"),
        ("silent.mid", "no notes"),
    ]:
        with pytest.raises(GenlabError, match=reason) as caught:
            read_midi(tmp_path / name)
        assert str(tmp_path / name) in str(caught.value) and "\n" not in str(caught.value)
    assert len(read_midi(tmp_path / "drums.mid")) == 1


# --- melodies and events ----------------------------------------------------------------------
def test_melody_events_of_a_hand_written_example():
    """C4 a quarter, an eighth rest, E4 an eighth, G4 tied to E4's end, then C4 C4 repeated."""
    m = seq((0, 4, 60, 0), (6, 8, 64, 0), (8, 12, 67, 0), (12, 14, 60, 0), (14, 16, 60, 0))
    events = encode_melody(m)
    assert events.dtype == np.int64
    assert events.tolist() == [41, 0, 0, 0, 1, 0, 45, 0, 48, 0, 0, 0, 41, 0, 41, 0]
    assert on(60) == 41 and START == 90 and notes.VOCAB_SIZE == 91 and notes.EVENTS == 90
    assert decode_melody(events) == m
    assert encode_melody(m, 20).tolist()[-5:] == [0, NOTE_OFF, 0, 0, 0]  # a rest after the end
    assert decode_melody([0, 0, 41, 0, 1]).notes.tolist() == [[2, 4, 60, 0]]  # silence first
    assert decode_melody([], qpm=80) == seq(qpm=80)


def test_encode_melody_cuts_windows_and_folds_octaves():
    long = seq((2, 40, 62, 0))
    assert encode_melody(long, 8).tolist() == [0, 0, on(62), 0, 0, 0, 0, 0]  # cut at the window
    high_low = seq((0, 2, 115, 0), (2, 4, 10, 0))
    assert encode_melody(high_low).tolist() == [on(103), 0, on(22), 0]  # octaves into 21..108
    assert encode_melody(seq(), 3).tolist() == [NO_EVENT] * 3
    rng = np.random.default_rng(1)
    for _ in range(20):  # decode(encode(m)) == m for monophonic in-range melodies that fit
        m = random_melody(rng)
        assert decode_melody(encode_melody(m, 64)) == m


def test_decode_melody_rejects_start_and_unknown_events():
    with pytest.raises(GenlabError, match="START"):
        decode_melody([START, 41, 0])
    with pytest.raises(GenlabError, match="out of range"):
        decode_melody([41, 95])
    with pytest.raises(GenlabError, match="out of range"):
        decode_melody([-1])
    with pytest.raises(GenlabError, match="1-D"):
        decode_melody([[41]])


def test_skyline_takes_the_top_line():
    chords = seq(
        (0, 8, 60, 0),
        (0, 4, 64, 1),  # the top for steps 0..3
        (4, 8, 67, 1),  # then 67
        (8, 12, 48, 2),  # alone below: the top line goes down to it
        (10, 12, 48, 0),  # the same pitch starting again on top: a repeated note
        (14, 16, 72, 0),  # after a rest
    )
    assert melody(chords).notes.tolist() == [
        [0, 4, 64, 0],
        [4, 8, 67, 0],
        [8, 10, 48, 0],
        [10, 12, 48, 0],
        [14, 16, 72, 0],
    ]
    inner = seq((0, 8, 60, 0), (2, 4, 72, 1))  # a higher note inside a long one
    assert melody(inner).notes.tolist() == [[0, 2, 60, 0], [2, 4, 72, 0], [4, 8, 60, 0]]
    assert len(melody(seq())) == 0


def test_voices_are_per_step_events_interleaved():
    chorale = seq(
        (0, 8, 72, 0), (8, 16, 74, 0),
        (0, 16, 67, 1),
        (0, 4, 64, 2), (4, 16, 62, 2),
        (0, 12, 48, 3),
    )  # fmt: skip
    events = encode_voices(chorale)
    assert events.shape == (16, 4) and events.dtype == np.int64
    assert events[0].tolist() == [on(72), on(67), on(64), on(48)]
    assert events[4].tolist() == [0, 0, on(62), 0] and events[12, 3] == NOTE_OFF
    stream = events.reshape(-1)  # S A T B S A T B ...
    assert stream[:4].tolist() == events[0].tolist() and stream[4 * 8] == on(74)
    assert decode_voices(events) == chorale
    overlapping = seq((0, 8, 60, 0), (4, 12, 64, 0), (4, 6, 62, 0))  # the later (higher) wins
    assert decode_voices(encode_voices(overlapping, 1)).notes.tolist() == [
        [0, 4, 60, 0],
        [4, 12, 64, 0],
    ]
    assert encode_voices(chorale, 2, 4).shape == (4, 2)  # voices 2, 3 left out; cut to 4 steps
    rng = np.random.default_rng(2)
    for _ in range(5):
        voices = [random_melody(rng).notes + np.array([0, 0, 0, v]) for v in range(4)]
        s = NoteSequence(np.concatenate(voices))
        assert decode_voices(encode_voices(s, 4, 64)) == s


def test_pianoroll_marks_sounding_pitches():
    roll = pianoroll(seq((0, 2, 60, 0), (1, 3, 64, 1)), 4)
    assert roll.shape == (4, 128) and roll.dtype == bool
    assert roll[:, 60].tolist() == [True, True, False, False]
    assert roll[:, 64].tolist() == [False, True, True, False] and roll.sum() == 4


# --- keys and statistics ----------------------------------------------------------------------
def scale(pitches: list[int], tonic_steps: int = 4) -> NoteSequence:
    """Quarter notes up the scale, the last (the tonic) held for `tonic_steps` quarter steps."""
    rows = [(4 * i, 4 * i + 4, p, 0) for i, p in enumerate(pitches[:-1])]
    end = 4 * (len(pitches) - 1)
    return seq(*rows, (end, end + tonic_steps, pitches[-1], 0))


def test_key_estimation_of_major_and_minor_scales():
    tonic, mode, r = estimate_key(scale([60, 62, 64, 65, 67, 69, 71, 72], 8))
    assert (tonic, mode) == (0, "major") and 0.7 < r <= 1 and key_name(tonic, mode) == "C major"
    tonic, mode, _ = estimate_key(scale([57, 59, 60, 62, 64, 65, 67, 69], 8))
    assert (tonic, mode) == (9, "minor") and key_name(tonic, mode) == "A minor"
    assert estimate_key(seq()) == (0, "major", 0.0)
    assert key_name(10, "major") == "Bb major" and key_name(6, "minor") == "F# minor"


def test_melody_statistics_on_hand_built_melodies():
    def quarters(*pitches: int) -> list[int]:
        return encode_melody(seq(*[(4 * i, 4 * i + 4, p, 0) for i, p in enumerate(pitches)]))

    up = quarters(60, 62, 64, 65, 67, 69, 71, 72)  # C major, 2 bars, steps only
    stats = melody_statistics([up])
    assert stats["notes_in_key"] == 1 and stats["starts_with_tonic"] == 1
    assert stats["repeated_notes"] == 0 and stats["leaps"] == 0
    assert stats["pitch_range"] == 12 and stats["unique_pitches"] == 8
    assert stats["note_density"] == 4 and stats["mean_interval"] == 12 / 7
    assert math.isnan(stats["resolved_leaps"]) and stats["excessively_repeated"] == 0
    assert stats["empty"] == 0

    leaps = quarters(60, 72, 71, 60, 67, 60, 62, 60)  # +12 -1 -11 +7 -7 +2 -2
    stats = melody_statistics([leaps])
    assert stats["leaps"] == 2 / 7  # +12 and -11; a fifth (7) is not a leap
    assert stats["resolved_leaps"] == 1 / 2  # +12 then -1 resolves; -11 then +7 does not
    assert stats["mean_interval"] == 42 / 7

    repeated = quarters(60, 60, 60, 60, 60, 64, 64, 64)  # five C4 in a row
    stats = melody_statistics([repeated, quarters(60, 60, 60, 60, 67, 67, 67, 67)])
    assert stats["excessively_repeated"] == 1 / 2  # four in a row is not excessive
    assert stats["repeated_notes"] == (6 / 7 + 6 / 7) / 2

    out_of_key = quarters(60, 61, 62, 64, 65, 67, 69, 71, 72, 60, 64, 67)  # one C#
    assert melody_statistics([out_of_key])["notes_in_key"] == 11 / 12

    rests = np.zeros(32, dtype=np.int64)
    with_start = [START, *up.tolist()]  # START tokens are dropped
    stats = melody_statistics([rests, with_start])
    assert stats["empty"] == 1 / 2 and stats["note_density"] == (0 + 4) / 2
    assert stats["pitch_range"] == 12  # only the melody with notes counts
    empty = melody_statistics([[], rests])
    assert empty["empty"] == 1 and math.isnan(empty["notes_in_key"])
    assert set(empty) == set(notes.STATISTICS)
    json.dumps(empty)  # nan is written as NaN


# --- audio and figures ------------------------------------------------------------------------
def test_render_additive_audio_in_range():
    s = seq((0, 4, 60, 0), (4, 8, 67, 1), qpm=120)  # two quarters: 1 s at 120 qpm
    audio = render(s, 8000)
    assert audio.dtype == np.float32 and np.abs(audio).max() <= 1 and audio.std() > 0.01
    assert 8000 <= len(audio) <= 8000 + 0.1 * 8000
    assert np.array_equal(audio, render(s, 8000))  # seeded
    assert len(render(seq(), 8000)) == 0
    with pytest.raises(GenlabError, match="unknown synth 'piano'"):
        render(s, synth="piano")


@pytest.mark.skipif(
    shutil.which("fluidsynth") is None or notes._soundfont() is None,
    reason="needs the fluidsynth program and a General MIDI soundfont",
)
def test_render_with_fluidsynth():
    audio = render(seq((0, 8, 60, 0)), 8000, synth="fluidsynth")
    assert audio.std() > 0.001 and np.abs(audio).max() <= 1


def test_render_without_fluidsynth_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(notes.shutil, "which", lambda name: None)
    with pytest.raises(GenlabError, match=r"^synth fluidsynth needs the fluidsynth program"):
        render(seq((0, 8, 60, 0)), 8000, synth="fluidsynth")


def test_pianoroll_figure_is_a_png(tmp_path):
    path = pianoroll_figure(
        [seq((0, 4, 60, 0), (0, 8, 48, 1)), seq()], tmp_path / "roll" / "r.png", titles=["a", "b"]
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the corpus -------------------------------------------------------------------------------
def test_corpus_pieces_start_on_a_bar_line_and_are_cached(metric_cache, monkeypatch):
    chorale = corpus_sequence("bach/bwv347")  # 4/4 with a quarter-note pickup
    assert corpus_meter("bach/bwv347") == "4/4"
    assert chorale.notes[0, 0] == 12  # the pickup: rests, then the first full bar at step 16
    assert set(chorale.notes[:, 3].tolist()) == {0, 1, 2, 3} and chorale.qpm == 120
    assert (chorale.notes[:, 0] == 16).sum() == 4  # four voices on the downbeat
    tune = corpus_sequence("essenFolksong/han1.abc#1")
    assert corpus_meter("essenFolksong/han1.abc#1") == "2/4" and len(tune) > 20
    assert set(tune.notes[:, 3].tolist()) == {0}
    assert corpus_meter("bach/bwv269") == "3/4"
    assert any((metric_cache / "music").glob("bach_bwv347.*.npy"))

    def fail(name):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(notes, "_parse_corpus", fail)
    assert corpus_sequence("bach/bwv347") == chorale
    with pytest.raises(GenlabError, match="not a corpus piece name"):
        corpus_sequence("essenFolksong/han1.abc#x")
    monkeypatch.undo()
    with pytest.raises(GenlabError, match="no such piece"):
        corpus_sequence("bach/bwv0")


# --- the event tokenizer ----------------------------------------------------------------------
def test_event_tokenizer_text_and_descriptions(tmp_path):
    tok = EventTokenizer()
    assert isinstance(tok, Tokenizer) and isinstance(tok, FileTokenizer)
    assert tok.kind == "melody" and tok.vocab_size == 91 and tok.voices == 1
    assert tok.steps_per_bar == 16 and tok.file_suffix == ".mid" and tok.start_id == START
    text = "<s> C4 _ _ _ off _ E4 _ A0 C8 F#5 _"
    ids = tok.encode(text)
    assert ids == [START, 41, 0, 0, 0, 1, 0, 45, 0, 2, 89, on(78), 0]
    assert tok.decode(ids) == text and tok.encode(" C4\n_\t off ") == [41, 0, 1]
    with pytest.raises(GenlabError, match="unknown music event 'Db4'"):
        tok.encode("C4 Db4")
    with pytest.raises(GenlabError, match="out of range"):
        tok.decode([91])
    for tokenizer in (tok, EventTokenizer(4)):
        d = tokenizer.to_dict()
        again = tokenizer_from_dict(json.loads(json.dumps(d)))
        assert type(again) is EventTokenizer and again.to_dict() == d
        assert load_tokenizer(save_tokenizer(tokenizer, tmp_path / "t.json")).to_dict() == d
    assert EventTokenizer(4).to_dict() == {"kind": "chorale", "voices": 4}
    with pytest.raises(GenlabError, match="voices"):
        tokenizer_from_dict({"kind": "melody", "voices": 4})
    with pytest.raises(GenlabError, match="voices"):
        EventTokenizer(0)


def test_event_tokenizer_stream_decoder_joins_after_a_prompt():
    tok = EventTokenizer()
    ids = [41, 0, 1, 45]
    decoder = tok.stream_decoder()
    streamed = "".join(decoder.push(i) for i in ids) + decoder.flush()
    assert streamed == " " + tok.decode(ids)  # each piece: a space, then the symbol
    assert tok.decode([START]) + streamed == tok.decode([START, *ids])


def test_event_tokenizer_hugging_face_gives_the_same_ids():
    tok = EventTokenizer(4)
    text = "<s> C4 E4 G4 C3 _ _ _ _ off off off off A0 C8 G#7 _"
    hf = tok.to_hugging_face()
    assert hf.encode(text).ids == tok.encode(text)
    assert hf.decode(tok.encode(text), skip_special_tokens=False) == tok.decode(tok.encode(text))
    assert hf.get_vocab_size() == 91


def test_event_tokenizer_writes_midi_files(tmp_path):
    tok = EventTokenizer()
    m = seq((0, 4, 60, 0), (6, 8, 64, 0), (8, 20, 67, 0))
    ids = [START, *tok.from_sequence(m)]
    assert len(ids) == 1 + 32  # whole bars
    assert tok.to_sequence(ids) == m
    assert read_midi(tok.write_file(ids, tmp_path / "one.mid")) == m
    batch = [[START, 41, 0, 0, 0], [45, 1, 0]]  # a batch: one after another, each on a bar line
    assert read_midi(tok.write_file(batch, tmp_path / "two.mid")).notes.tolist() == [
        [0, 4, 60, 0],
        [16, 17, 64, 0],
    ]
    chorales = EventTokenizer(4)
    four = seq((0, 4, 72, 0), (0, 4, 67, 1), (0, 8, 64, 2), (0, 4, 48, 3), (4, 8, 74, 0))
    stream = chorales.from_sequence(four)
    assert len(stream) == 16 * 4 and stream[:4] == [on(72), on(67), on(64), on(48)]
    assert chorales.to_sequence([START, *stream, 41, 0]) == four  # a partial step is cut
    assert read_midi(chorales.write_file(np.array([stream]), tmp_path / "c.mid")) == four


def test_tokenizer_statistics_measure_the_melody_or_the_soprano():
    from genlab.tokenizers import SequenceStatistics

    line = encode_melody(scale([60, 62, 64, 65, 67]), 32)
    melody = EventTokenizer(1)
    assert isinstance(melody, SequenceStatistics)
    expected = melody_statistics([line])
    same = melody.statistics([[START, *line.tolist()]])  # START is dropped
    assert same.keys() == expected.keys()
    assert all(same[k] == expected[k] or math.isnan(expected[k]) for k in expected)
    # a chorale's statistics are its soprano's: every step's first id
    low = encode_melody(scale([48, 49, 50, 51, 52]), 32)
    chorale = np.stack([line, low, low, low], axis=1).reshape(-1)
    got = EventTokenizer(4).statistics(chorale[None])
    assert got["notes_in_key"] == expected["notes_in_key"] == 1.0
