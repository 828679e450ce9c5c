"""WaveNet from the command line: train on tones, info's receptive field, sample a WAV with
--seconds and --label (fast and naive alike), a melody for a contour model, evaluate with the
baselines, and bad options as one-line errors."""

from __future__ import annotations

import json
import math

from genlab.sound import read_audio
from test_cli import assert_one_line_error, run_cli

TINY = ["-o", "stacks=1", "-o", "layers=3", "-o", "residual_channels=4"]
TINY += ["-o", "dilation_channels=4", "-o", "skip_channels=8", "-o", "head_channels=8"]
DATA = ["--data", "tones", "-o", "data.segment=512", "-o", "data.n=8", "-o", "train.batch_size=4"]


def train(capsys, run, *extra):
    code, _, err = run_cli(
        capsys, "train", "wavenet", *DATA, "--steps", "2", "--out", run, "-q", *TINY, *extra
    )
    assert code == 0, err


def test_train_info_sample_with_label_and_evaluate(tmp_path, capsys):
    run = tmp_path / "wavenet"
    train(capsys, run)
    code, out, err = run_cli(capsys, "info", run)
    assert code == 0, err
    assert json.loads(out)["facts"]["receptive_field"] == 8  # 1 stack of dilations 1, 2, 4
    assert json.loads(out)["facts"]["receptive_field_ms"] == 1.0  # at 8 kHz
    wavs = []
    for fast in ("true", "false"):
        wav = tmp_path / f"x-{fast}.wav"
        code, _, err = run_cli(
            capsys, "sample", run, "--seconds", "0.01", "--n", "2", "--label", "3",
            "--fast", fast, "--out", wav,
        )  # fmt: skip
        assert code == 0, err
        wavs.append(wav.read_bytes())
        audio, rate = read_audio(wav)
        assert rate == 8000 and audio.shape == (1, 80 + 4000 + 80)  # 0.5 s of silence between
    assert wavs[0] == wavs[1]
    code, _, err = run_cli(capsys, "sample", run, "--label", "4", "--out", tmp_path / "y.wav")
    assert_one_line_error(code, err, "labels must be one class")
    code, _, err = run_cli(capsys, "sample", run, "--melody", "C4:1", "--out", tmp_path / "y.wav")
    assert_one_line_error(code, err, "pitch contour")
    code, _, err = run_cli(capsys, "sample", run, "--seconds", "31", "--out", tmp_path / "y.wav")
    assert_one_line_error(code, err, "seconds")
    code, _, err = run_cli(capsys, "evaluate", run)
    assert code == 0, err
    result = json.loads((run / "eval.json").read_text())
    assert 0 < result["bits_per_sample"] <= 8.5 and math.isfinite(result["lpc_bits_per_sample"])
    assert {"figures/waveforms.png", "figures/spectrograms.png"} <= set(result["figures"])


def test_a_contour_model_plays_a_melody(tmp_path, capsys):
    run = tmp_path / "contour"
    train(capsys, run, "-o", "data.contour=true", "-o", "data.label=none")
    wav = tmp_path / "melody.wav"
    code, _, err = run_cli(
        capsys, "sample", run, "--melody", "C4:0.02 R:0.01 G4:0.02", "--n", "1", "--out", wav
    )
    assert code == 0, err
    assert read_audio(wav)[0].shape == (1, 400)  # the melody's 0.05 s at 8 kHz
    code, _, err = run_cli(capsys, "sample", run, "--melody", "H4:1", "--out", tmp_path / "y.wav")
    assert_one_line_error(code, err, "melody note")
    # no label-free likelihood without the contour: evaluate scores p(x | contour)
    code, _, err = run_cli(capsys, "evaluate", run, "--no-figures")
    assert code == 0, err
    result = json.loads((run / "eval.json").read_text())
    assert 0 < result["bits_per_sample"] <= 8.5 and "nll_nats" not in result
