"""Audio datasets: `audio:PATH` on files the tests write, `tones`, `chorales-audio`."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile
import torch

from genlab.cli import main
from genlab.data import audio as audio_data
from genlab.data import load_dataset
from genlab.errors import GenlabError
from test_sound import peak_frequency, sine


def every(data) -> tuple:
    return data.batch(torch.arange(len(data)))


# --- audio:PATH -------------------------------------------------------------------------------
def test_folder_of_wav_flac_ogg_is_mono_resampled_segments(tmp_path):
    stereo = np.stack([sine(1000, 44100, 1.0), sine(1000, 44100, 1.0, 0.3)], axis=1)
    (tmp_path / "sub").mkdir()
    for name in ("a.wav", "a.flac", "sub/a.ogg"):  # found recursively
        soundfile.write(tmp_path / name, stereo, 44100)
    data = load_dataset(f"audio:{tmp_path}", "train+val+test", sample_rate=8000, segment=2048)
    assert data.spec.kind == "audio" and data.spec.shape == (1, 2048)
    assert data.spec.config_values() == {
        "data_shape": (1, 2048),
        "num_classes": 0,
        "sample_rate": 8000,
        "local_channels": 0,
        "local_hop": 0,
    }
    x = every(data)
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.shape[1:] == (1, 2048)
    assert x.abs().max() <= 1
    for segment in x[:, 0].numpy():  # every segment is the 1 kHz sine, mixed to mono
        assert peak_frequency(segment, 8000) == pytest.approx(1000, abs=8)
        assert np.abs(segment).max() == pytest.approx(0.4, abs=0.03)


def test_folder_is_split_by_file(tmp_path):
    for i in range(10):  # file i holds the constant amplitude (i + 1) / 32
        soundfile.write(tmp_path / f"f{i}.wav", np.full(3000, (i + 1) / 32, np.float32), 8000)
    files = {}
    for split in ("train", "val", "test"):
        data = load_dataset(f"audio:{tmp_path}", split, sample_rate=8000, segment=1000)
        levels = np.round(every(data).numpy() * 32).astype(int)  # (N, 1, 1000)
        assert (levels == levels[:, :, :1]).all()  # no segment straddles two files
        files[split] = set(levels[:, 0, 0].tolist())
        # train segments start every 500 samples: 5 per 3000-sample file; val/test: 3
        assert len(data) == len(files[split]) * (5 if split == "train" else 3)
    assert len(files["val"]) == len(files["test"]) == 1 and len(files["train"]) == 8
    assert files["train"] | files["val"] | files["test"] == set(range(1, 11))
    again = load_dataset(f"audio:{tmp_path}", "test", sample_rate=8000, segment=1000)
    assert set(np.round(every(again).numpy() * 32).astype(int).ravel()) == files["test"]


def test_one_file_is_split_by_time(tmp_path):
    ramp = np.linspace(0.1, 0.9, 16000).astype(np.float32)
    soundfile.write(tmp_path / "ramp.flac", ramp, 8000)
    parts = [
        every(load_dataset(f"audio:{tmp_path / 'ramp.flac'}", s, segment=400))
        for s in ("train", "val", "test")
    ]
    assert [len(p) for p in parts] == [(12800 - 400) // 200 + 1, 4, 4]
    assert all((p > 0.09).all() for p in parts)  # no zero padding
    assert parts[0].max() < parts[1].min() and parts[1].max() < parts[2].min()
    # train segments overlap by half: the second starts 200 samples after the first
    assert torch.allclose(parts[0][1, 0, :200], parts[0][0, 0, 200:])


def test_short_and_silent_files_count(tmp_path):
    soundfile.write(tmp_path / "short.wav", np.full(100, 0.5, np.float32), 8000)
    soundfile.write(tmp_path / "silence.wav", np.zeros(300, np.float32), 8000)
    train = every(load_dataset(f"audio:{tmp_path}", "train", segment=256))
    test = every(load_dataset(f"audio:{tmp_path}", "test", segment=256))  # 2 files: val = test
    both = torch.cat([train, test])
    assert len(both) == 2
    short = both[both.abs().amax(dim=(1, 2)) > 0][0, 0]
    assert torch.all(short[:100] > 0.49) and torch.all(short[100:] == 0)  # padded once
    assert (both.abs().amax(dim=(1, 2)) == 0).sum() == 1  # the silent file is a segment too


@pytest.mark.parametrize(
    "content, why",
    [
        (b"", "empty file"),
        (b"not audio at all " * 40, "not a readable"),
        (b"RIFF\xff\x00\x00\x00WAVEfmt \x10\x00", "not a readable"),
    ],
)
def test_bad_file_is_one_line_naming_it(tmp_path, capsys, content, why):
    soundfile.write(tmp_path / "good.wav", sine(440, 8000, 0.5), 8000)
    (tmp_path / "broken.wav").write_bytes(content)
    with pytest.raises(GenlabError, match=f"broken.wav: {why}"):
        load_dataset(f"audio:{tmp_path}")
    code = main(["train", "vae", "--data", f"audio:{tmp_path}", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "broken.wav" in err and why in err
    assert not (tmp_path / "run").exists()


def test_path_errors(tmp_path):
    with pytest.raises(GenlabError, match="no such file or folder"):
        load_dataset(f"audio:{tmp_path / 'missing'}")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(GenlabError, match="no audio files"):
        load_dataset(f"audio:{tmp_path}")
    with pytest.raises(GenlabError, match="needs an argument"):
        load_dataset("audio:")
    with pytest.raises(GenlabError, match="segment must be"):
        load_dataset(f"audio:{tmp_path}", segment=4)


# --- tones ------------------------------------------------------------------------------------
def test_tones_labels_pitch_and_timbre():
    options = {"n": 48, "segment": 2048}
    by_instrument = load_dataset("tones", "train", **options)
    x, instrument = every(by_instrument)
    x_again, pitch = every(load_dataset("tones", "train", label="pitch", **options))
    assert torch.equal(x, x_again)  # the label option picks a label, not other notes
    assert by_instrument.spec.num_classes == 4 and by_instrument.spec.extra["classes"][0] == "sine"
    assert x.shape == (48, 1, 2048) and x.abs().max() <= 1 and x.abs().amax(dim=2).min() > 0.05
    assert set(instrument.tolist()) == {0, 1, 2, 3} and pitch.min() >= 0 and pitch.max() < 24
    for i in range(48):
        f0 = 440 * 2 ** ((pitch[i].item() + 48 - 69) / 12)
        if instrument[i] == 0:  # a sine: its peak is the fundamental
            assert peak_frequency(x[i, 0].numpy(), 8000) == pytest.approx(f0, rel=0.05)
    spectra = np.abs(np.fft.rfft(x[:, 0].numpy(), axis=1))
    richness = (spectra > spectra.max(axis=1, keepdims=True) * 0.1).sum(axis=1)
    sines, saws = instrument == 0, instrument == 2
    assert richness[sines.numpy()].mean() < richness[saws.numpy()].mean()  # harmonics differ
    plain = load_dataset("tones", "val", label="none", **options)
    assert plain.spec.num_classes == 0 and isinstance(plain.batch(torch.arange(2)), torch.Tensor)
    assert not torch.equal(plain.batch(torch.arange(4)), x[:4])  # another seed per split


def test_tones_contour():
    data = load_dataset("tones", "test", label="pitch", contour=True, n=16, segment=2048)
    assert data.spec.config_values()["local_channels"] == 2
    assert data.spec.config_values()["local_hop"] == 256
    x, y, c = every(data)
    assert c.shape == (16, 2, 8) and c.dtype == torch.float32
    voiced = c[:, 1] == 1
    assert voiced[:, 0].any() and voiced.any(dim=1).all() and not voiced.all()
    pitch = (y + 48).float()[:, None].expand(-1, 8) / 127
    assert torch.allclose(c[:, 0][voiced], pitch[voiced]) and (c[:, 0][~voiced] == 0).all()
    for i in range(16):  # unvoiced frames are (nearly) silent
        frames = x[i, 0].view(8, 256).abs().amax(dim=1)
        if (~voiced[i]).any():
            assert frames[~voiced[i]].max() < frames[voiced[i]].max()
    sub = data.batch(torch.tensor([3, 1]))
    assert torch.equal(sub[2], c[[3, 1]]) and torch.equal(sub[0], x[[3, 1]])


def test_tones_options_are_checked():
    with pytest.raises(GenlabError, match="sample_rate must be one of 8000, 16000"):
        load_dataset("tones", sample_rate=22050)
    with pytest.raises(GenlabError, match="multiple of 256"):
        load_dataset("tones", contour=True, segment=1000)
    with pytest.raises(GenlabError, match="label must be one of"):
        load_dataset("tones", label="colour")
    with pytest.raises(GenlabError, match="contour must be true or false"):
        load_dataset("tones", contour="yes")
    spec = load_dataset("tones", "val", sample_rate=16000, n=2, segment=512).spec
    assert spec.sample_rate == 16000 and spec.shape == (1, 512)


# --- chorales-audio ---------------------------------------------------------------------------
def test_chorale_splits_are_fixed_by_piece():
    splits = audio_data.chorale_splits(60)
    assert splits["test"] == list(range(1, 60, 10)) and splits["val"] == list(range(2, 60, 10))
    assert len(splits["train"]) == 48
    assert not set(splits["train"]) & set(splits["test"] + splits["val"])
    assert audio_data.chorale_splits(2) == {"train": [0], "val": [1], "test": [1]}
    assert audio_data.chorale_splits(3)["train"] == [0]
    for split, pieces in audio_data.chorale_splits(12).items():  # more pieces: none moves
        assert set(audio_data.chorale_splits(3)[split]) <= set(pieces)


def test_chorales_audio_two_pieces_contour_and_cache(metric_cache, monkeypatch):
    options = {"pieces": 2, "segment": 4096, "contour": True}
    train = load_dataset("chorales-audio", "train", **options)
    test = load_dataset("chorales-audio", "test", **options)
    assert train.spec.sample_rate == 8000 and train.spec.extra["synth"] == "additive"
    x, y, c = every(test)
    assert x.shape[1:] == (1, 4096) and c.shape[1:] == (2, 16) and (y == 0).all()
    assert len(train) > 2 * len(test) - 4  # train segments overlap by half
    assert 0.05 < x.abs().max() <= 1 and x.std() > 0.01
    voiced = c[:, 1] == 1
    assert voiced.float().mean() > 0.5  # the soprano sings most of the time
    midi = c[:, 0][voiced] * 127
    assert torch.allclose(midi, midi.round(), atol=1e-4) and 55 <= midi.min() <= midi.max() <= 84
    assert not torch.equal(every(train)[0][: len(x)], x)  # another piece
    assert (metric_cache / "audio").is_dir() and len(list((metric_cache / "audio").iterdir())) >= 4

    def fail(*args, **kwargs):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(audio_data, "_parse_notes", fail)
    monkeypatch.setattr(audio_data, "_additive", fail)
    cached = load_dataset("chorales-audio", "test", **options)
    assert all(torch.equal(a, b) for a, b in zip(every(cached), (x, y, c), strict=True))
    val = load_dataset("chorales-audio", "val", **options)  # 2 pieces: val = test
    assert torch.equal(every(val)[0], x)


def test_chorales_audio_options_are_checked():
    with pytest.raises(GenlabError, match="pieces must be between 2"):
        load_dataset("chorales-audio", pieces=1)
    with pytest.raises(GenlabError, match="synth must be one of"):
        load_dataset("chorales-audio", synth="piano")
    with pytest.raises(GenlabError, match="tempo"):
        load_dataset("chorales-audio", tempo=0)


def test_midi_file_is_well_formed():
    notes = np.array([[0, 1, 60, 0], [1, 0.5, 64, 1], [0, 2, 48, 3]], dtype=np.float64)
    midi = audio_data._midi_file(notes, 0.5)
    assert midi[:4] == b"MThd" and midi[14:18] == b"MTrk"
    assert int.from_bytes(midi[18:22], "big") == len(midi) - 22
    assert midi.endswith(b"\xff\x2f\x00") and b"\xff\x51\x03\x07\xa1\x20" in midi  # 500000 us


@pytest.mark.skipif(
    shutil.which("fluidsynth") is None or audio_data._soundfont() is None,
    reason="needs the fluidsynth program and a General MIDI soundfont",
)
def test_chorales_audio_with_fluidsynth():
    data = load_dataset("chorales-audio", "test", pieces=2, synth="fluidsynth", segment=4096)
    assert data.spec.extra["synth"] == "fluidsynth"
    x = every(data)
    assert x.shape[1:] == (1, 4096) and x.std() > 0.01 and x.abs().max() <= 1
    auto = load_dataset("chorales-audio", "test", pieces=2, synth="auto", segment=4096)
    assert auto.spec.extra["synth"] == "fluidsynth"
