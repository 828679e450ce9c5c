"""The music verbs end to end: train on music, `genlab generate` writes MIDI, `genlab compose`
(language model and MusicVAE: primer, WAV, piano roll, interpolation) and its one-line errors."""

from __future__ import annotations

import pytest

from test_cli import assert_one_line_error, run_cli

SMALL_VAE = ["-o", "z_size=4", "-o", "embedding_size=4", "-o", "encoder_size=8"]
SMALL_VAE += ["-o", "decoder_size=8", "-o", "decoder_layers=1"]
SMALL_GPT = ["-o", "n_layer=1", "-o", "n_embd=16", "-o", "n_head=2"]
FAST = [
    "-o",
    "data.pieces=8",
    "--steps",
    "4",
    "-q",
    "-o",
    "train.eval_every=4",
    "-o",
    "train.batch_size=16",
]
FAST += ["-o", "train.eval_batches=1", "-o", "train.sample_every=4", "-o", "train.sample_n=2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from genlab.cli import main

    folder = tmp_path_factory.mktemp("music")
    for name, small in (("musicvae", SMALL_VAE), ("gpt", SMALL_GPT)):
        args = ["train", name, "--data", "bach-melodies", "--out", str(folder / name)]
        assert main([*args, *small, *FAST]) == 0
    return folder


def test_training_on_music_writes_midi_samples(runs):
    samples = sorted((runs / "musicvae" / "samples").glob("*.mid"))
    assert samples and samples[-1].stat().st_size > 0


def test_generate_on_a_music_language_model_writes_midi(runs, capsys, tmp_path):
    out = tmp_path / "g.mid"
    code, text, err = run_cli(
        capsys, "generate", runs / "gpt", "--max-new-tokens", "32", "--seed", "1", "--out", out
    )
    assert code == 0 and text.startswith("<s>") and out.is_file(), err
    assert out.read_bytes().startswith(b"MThd")


def test_compose_with_both_kinds_of_model(runs, capsys, tmp_path):
    song = tmp_path / "song.mid"
    code, _, err = run_cli(
        capsys, "compose", runs / "musicvae", "--bars", "6", "--out", song, "--wav",
        tmp_path / "song.wav", "--roll", tmp_path / "song.png", "--seed", "3",
    )  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "song.wav").stat().st_size > 44 and (tmp_path / "song.png").is_file()
    for model in ("musicvae", "gpt"):
        more = tmp_path / f"{model}-more.mid"
        code, _, err = run_cli(
            capsys, "compose", runs / model, "--primer", song, "--bars", "2", "--out", more
        )
        assert code == 0 and more.is_file(), err
    morph = tmp_path / "morph.mid"
    code, _, err = run_cli(
        capsys, "compose", runs / "musicvae", "--interpolate", song, song, "--steps", "3",
        "--out", morph,
    )  # fmt: skip
    assert code == 0 and morph.is_file(), err


def test_compose_errors_are_one_line(runs, capsys, tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd not really")
    code, _, err = run_cli(
        capsys, "compose", runs / "gpt", "--primer", bad, "--out", tmp_path / "x.mid"
    )
    assert_one_line_error(code, err, "bad.mid")
    code, _, err = run_cli(
        capsys, "compose", runs / "gpt", "--interpolate", bad, bad, "--out", tmp_path / "y.mid"
    )
    assert_one_line_error(code, err)
    code, _, err = run_cli(
        capsys, "compose", runs / "musicvae", "--bars", "0", "--out", tmp_path / "z.mid"
    )
    assert_one_line_error(code, err, "--bars")


def test_compose_with_an_attribute_vector(runs, capsys, tmp_path):
    """--attribute adds amount x the vector to every z: amount 0 is the plain song, another
    amount a song of the same length; the statistics line is printed."""
    songs = {}
    for name, extra in (
        ("plain", []),
        ("zero", ["--attribute", "note_density", "--amount", "0"]),
        ("more", ["--attribute", "note_density", "--amount", "3"]),
    ):
        songs[name] = tmp_path / f"{name}.mid"
        code, text, err = run_cli(
            capsys, "compose", runs / "musicvae", "--bars", "4", "--seed", "5", "--out",
            songs[name], "--temperature", "0", *extra,
        )  # fmt: skip
        assert code == 0, err
        assert '"note_density"' in text
    from genlab.notes import read_midi

    assert read_midi(songs["zero"]) == read_midi(songs["plain"])
    assert songs["more"].stat().st_size > 0


def test_attribute_errors_are_one_line(runs, capsys, tmp_path):
    out = tmp_path / "a.mid"
    code, _, err = run_cli(capsys, "compose", runs / "musicvae", "--attribute", "loudness",
                           "--out", out)  # fmt: skip
    assert_one_line_error(code, err, "note_density")
    code, _, err = run_cli(capsys, "compose", runs / "gpt", "--attribute", "note_density",
                           "--out", out)  # fmt: skip
    assert_one_line_error(code, err, "latent")
    song = tmp_path / "s.mid"
    assert run_cli(capsys, "compose", runs / "musicvae", "--bars", "2", "--out", song)[0] == 0
    code, _, err = run_cli(
        capsys, "compose", runs / "musicvae", "--interpolate", song, song, "--attribute",
        "note_density", "--out", out,
    )  # fmt: skip
    assert_one_line_error(code, err, "--interpolate")
    assert not out.exists()
