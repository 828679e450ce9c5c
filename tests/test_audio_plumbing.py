"""Audio through the shared commands, with a tiny audio model registered only here
(tests/plugin/chirp.py: a contract.AudioModel and contract.ModelFacts) on a tiny AR(2) dataset:
`genlab train` writes WAV samples, `genlab info` shows the model's facts, `genlab evaluate`
reports bits per sample beside the baselines fitted on the run's TRAINING split, and
`genlab sample --out x.wav` writes a WAV at the model's rate."""

from __future__ import annotations

import json

import pytest

from genlab import data, registry
from genlab.metrics.audio import DEFINITIONS
from test_cli import run_cli


@pytest.fixture
def chirp_run(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(registry.MODELS, "chirp", ("plugin.chirp:Chirp", "a test audio model"))
    monkeypatch.setitem(data.DATASETS, "hum", ("plugin.chirp:load_hum", "AR(2) audio (a test)"))
    run = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "train", "chirp", "--data", "hum", "--steps", "2", "--out", run, "-q",
        "-o", "context=16", "-o", "train.batch_size=8", "-o", "train.sample_n=2",
    )  # fmt: skip
    assert code == 0, err
    return run


def test_info_shows_the_facts_of_the_model(chirp_run, capsys):
    code, out, err = run_cli(capsys, "info", chirp_run)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["facts"] == {"receptive_field": 16, "receptive_field_ms": 2.0}  # at 8 kHz
    assert shown["model_config"]["sample_rate"] == 8000  # filled from the data


def test_evaluate_fits_the_baselines_on_the_training_split(chirp_run, capsys):
    code, _, err = run_cli(capsys, "evaluate", chirp_run, "--no-figures")
    assert code == 0, err
    result = json.loads((chirp_run / "eval.json").read_text())
    assert result["split"] == "test" and result["audio_samples"] == 10 * 256
    assert result["baseline_training_samples"] == 40 * 256  # train, not test (10) or val (8)
    assert result["bits_per_sample"] == pytest.approx(8.0)
    assert result["lpc_order"] == 16  # the receptive field the model states
    assert result["lpc_bits_per_sample"] < result["unigram_bits_per_sample"] < 8
    for key in ("bits_per_sample", "unigram_bits_per_sample", "lpc_bits_per_sample"):
        assert result["definitions"][key] == DEFINITIONS[key]  # eval.json says what each is


def test_samples_are_wav_files(chirp_run, tmp_path, capsys):
    import soundfile

    written = sorted((chirp_run / "samples").glob("*.wav"))  # the training loop's samples
    assert written and written[0].read_bytes()[:4] == b"RIFF"
    out = tmp_path / "x.wav"
    code, _, err = run_cli(capsys, "sample", chirp_run, "--n", "1", "--out", out)
    assert code == 0, err
    samples, rate = soundfile.read(out)
    assert rate == 8000 and samples.shape == (256,)
    assert 0.45 < abs(samples).max() <= 0.5 + 1e-4  # the model's tone of amplitude 0.5
