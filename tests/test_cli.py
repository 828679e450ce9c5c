"""The command line: every command works, and bad input is one line on stderr with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genlab.cli import main

TINY = [
    "-o",
    "channels=4",
    "-o",
    "blocks_high=0",
    "-o",
    "blocks_low=1",
    "-o",
    "latent_dim=2",
    "-o",
    "iwae_k=8",
    "-o",
    "train.eval_every=10",
    "-o",
    "train.checkpoint_every=10",
    "-o",
    "train.sample_every=10",
    "-o",
    "train.batch_size=16",
]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    assert (
        main(["train", "vae", "--data", "digits", "--steps", "20", "--out", str(out), "-q", *TINY])
        == 0
    )
    return out


def test_help_for_every_command(capsys):
    for args in ([], ["list"], ["train"], ["sample"], ["evaluate"], ["info"]):
        code, out, _ = run_cli(capsys, *args, "--help")
        assert code == 0 and "Usage" in out


def test_list_shows_models_and_datasets(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for name in (
        "vae",
        "mnist-5k",
        "mnist",
        "cifar10",
        "digits",
        "shapes",
        "toy2d:moons",
        "folder:",
    ):
        assert name in out
    from genlab.data import list_datasets
    from genlab.registry import list_models

    lines = out.splitlines()  # one line per entry, whatever the terminal width
    rows = [*list_models(), *list_datasets()]
    assert len(lines) == 2 + len(rows) and lines[0] == "models:"
    for name, description in rows:
        assert sum(line.split()[0] == name for line in lines if line.startswith(" ")) == 1
        assert any(
            line.split(maxsplit=1) == [name, " ".join(description.split())] for line in lines
        )


def test_version(capsys):
    import torch

    from genlab import __version__

    code, out, err = run_cli(capsys, "--version")
    assert code == 0, err
    assert out.startswith(f"genlab {__version__} ") and f"torch {torch.__version__}" in out
    assert len(out.splitlines()) == 1


def test_train_sample_evaluate_info_end_to_end(trained, capsys, tmp_path):
    for name in (
        "config.json",
        "model.safetensors",
        "ema.safetensors",
        "trainer_state.pt",
        "metrics.csv",
    ):
        assert (trained / name).is_file(), name
    assert list((trained / "samples").glob("*.png"))
    code, _, err = run_cli(
        capsys, "sample", trained, "--n", "9", "--out", tmp_path / "g.png", "--seed", "3"
    )
    assert code == 0, err and (tmp_path / "g.png").is_file()
    code, out, err = run_cli(capsys, "evaluate", trained)
    assert code == 0, err
    result = json.loads((trained / "eval.json").read_text())
    assert result["nll_nats"] > 0 and result["bits_per_dim"] > 0 and result["nll_bound"]
    for fig in result["figures"]:
        assert (trained / fig).is_file()
    code, out, _ = run_cli(capsys, "info", trained)
    assert code == 0 and '"steps_done": 20' in out


def test_resume_extends_a_finished_run(trained, capsys, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    code, _, err = run_cli(capsys, "train", "vae", "--out", copy, "--resume", "--steps", "25", "-q")
    assert code == 0, err
    assert (copy / "checkpoints" / "step-00000025").is_dir()
    # resuming a finished run on a chosen device is a no-op, not a crash
    code, _, err = run_cli(
        capsys, "train", "vae", "--out", copy, "--resume", "--device", "cpu", "-q"
    )
    assert code == 0, err
    code, _, err = run_cli(capsys, "train", "vae", "--out", copy, "--resume", "-o", "latent_dim=3")
    assert_one_line_error(code, err, "only --steps and --device may change")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "vea", "--data", "digits"], ["unknown model 'vea'", "did you mean: vae"]),
        (["train", "vae", "--data", "mnist5k"], ["unknown dataset", "mnist-5k"]),
        (["train", "vae", "--data", "digits", "-o", "latent_dimm=3"], ["did you mean: latent_dim"]),
        (["train", "vae", "--data", "digits", "-o", "latent_dim=abc"], ["expected an integer"]),
        (["train", "vae", "--data", "digits", "-o", "train.lr=-1"], ["lr must be a positive"]),
        (["train", "vae", "--data", "digits", "-o", "novalue"], ["expected key=value"]),
        (["sample", "/nonexistent/run"], ["does not exist"]),
        (["info", "."], ["not a genlab run directory"]),
        (["evaluate", "/nonexistent/run"], ["does not exist"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args, fragments):
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, *fragments)


def test_empty_image_folder(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(
        capsys, "train", "vae", "--data", f"folder:{tmp_path / 'empty'}", "--out", tmp_path / "r"
    )
    assert_one_line_error(code, err, "no")


def test_unwritable_output_paths(capsys, tmp_path, trained):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = run_cli(
        capsys, "train", "vae", "--data", "digits", "--out", blocker / "run", *TINY
    )
    assert_one_line_error(code, err, "cannot write to output folder")
    code, _, err = run_cli(capsys, "sample", trained, "--out", blocker / "grid.png")
    assert_one_line_error(code, err, "output folder")


def test_existing_run_is_not_overwritten(capsys, trained):
    before = (trained / "model.safetensors").read_bytes()
    code, _, err = run_cli(capsys, "train", "vae", "--data", "digits", "--out", trained, *TINY)
    assert_one_line_error(code, err, "already exists")
    assert (trained / "model.safetensors").read_bytes() == before


def test_corrupt_run_directory(capsys, trained, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(trained, bad)
    (bad / "model.safetensors").write_bytes(b"garbage")
    (bad / "ema.safetensors").write_bytes(b"garbage")
    code, _, err = run_cli(capsys, "sample", bad, "--out", tmp_path / "g.png")
    assert_one_line_error(code, err, "corrupt weights file")
    (bad / "config.json").write_text("{not json")
    code, _, err = run_cli(capsys, "info", bad)
    assert_one_line_error(code, err, "corrupt")


def test_console_script_exit_code_and_no_traceback(tmp_path):
    genlab = Path(sys.executable).with_name("genlab")
    done = subprocess.run(
        [str(genlab), "train", "nosuchmodel", "--data", "digits"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown model") and "Traceback" not in done.stderr


def test_unreadable_or_invalid_config_files_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_config: [unclosed\n")
    for path, message in (
        (tmp_path / "missing.yaml", "cannot read the config file"),
        (bad, "cannot parse the config file"),
    ):
        code, _, err = run_cli(
            capsys, "train", "vae", "--data", "digits", "--config", path, "--out", tmp_path / "r"
        )
        assert_one_line_error(code, err, message)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    code, _, err = run_cli(
        capsys, "train", "vae", "--data", "digits", "--config", listed, "--out", tmp_path / "r"
    )
    assert_one_line_error(code, err, "must be a mapping")


def test_a_text_model_on_image_data_is_one_line_and_leaves_no_folder(tmp_path, capsys):
    """The issue's command, in a real process: it used to crash in the embedding after making
    a folder that only held config.json (and that a second try refused as existing)."""
    out = tmp_path / "run"
    refusal = (
        "error: gpt cannot train on mnist-5k: it models text data, and mnist-5k is image data\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "genlab.cli", "train", "gpt", "--data", "mnist-5k",
         "--out", str(out), "-q"],
        capture_output=True, text=True, timeout=120, env=os.environ,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (2, refusal) and not out.exists()
    code, _, err = run_cli(capsys, "train", "gpt", "--data", "mnist-5k", "--out", out, "-q")
    assert (code, err) == (2, refusal) and not out.exists()  # the same answer the second time


@pytest.mark.parametrize(
    "model, data",
    [
        ("vae", "tinyshakespeare"),
        ("dcgan", "tinyshakespeare"),
        ("stylegan", "tinyshakespeare"),
        ("realnvp", "tinyshakespeare"),
        ("glow", "tinyshakespeare"),
        ("pixelcnn", "tinyshakespeare"),
        ("pixelrnn-diag", "tinyshakespeare"),
        ("lstm", "digits"),
        ("rnn", "toy2d:moons"),
        ("pixelcnn", "toy2d:moons"),
    ],
)
def test_a_model_on_data_it_cannot_model_is_refused_before_the_folder(capsys, tmp_path, model,
                                                                      data):  # fmt: skip
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", model, "--data", data, "--out", out)
    assert_one_line_error(code, err, f"error: {model} cannot train on {data}: it models ")
    assert not out.exists()
