"""--device on every command that runs a trained model: sample, interpolate, evaluate, generate.

The device goes from the command to genlab.load (through the api functions), which resolves it
before reading anything: an unknown device, or one this machine lacks, is a one-line error with
exit 2. A bad device failing proves the option reaches `load` (without it, cpu is used).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from genlab.cli import main
from test_cli import assert_one_line_error, run_cli
from text_corpus import CORPUS

QUICK = ["--steps", "2", "-q", "-o", "train.sample_every=2", "-o", "train.batch_size=16"]
GAN = ["-o", "z_dim=4", "-o", "g_width=4", "-o", "d_width=4"]
GPT = ["-o", "n_layer=1", "-o", "n_head=2", "-o", "n_embd=8", "-o", "data.block_size=16"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("device")
    gan, gpt = folder / "dcgan", folder / "gpt"
    for args in (
        ["train", "dcgan", "--data", "digits", "--out", gan, *QUICK, *GAN],
        ["train", "gpt", "--data", CORPUS, "--out", gpt, *QUICK, *GPT],
    ):
        assert main([str(a) for a in args]) == 0
    return {"dcgan": gan, "gpt": gpt}


def commands(runs: dict[str, Path], folder: Path) -> dict[str, list]:
    """Each command with its run and arguments, before --device."""
    return {
        "sample": ["sample", runs["dcgan"], "--n", 4, "--out", folder / "s.png"],
        "interpolate": [
            "interpolate",
            runs["dcgan"],
            "--walks",
            2,
            "--keyframes",
            2,
            "--frames",
            2,
            "--out",
            folder / "w.gif",
        ],
        "evaluate": ["evaluate", runs["dcgan"], "--no-figures"],
        "generate": ["generate", runs["gpt"], "--max-new-tokens", 5, "--seed", 0],
    }


@pytest.mark.parametrize("command", ["sample", "interpolate", "evaluate", "generate"])
def test_device_cpu_runs_the_command(runs, command, tmp_path, capsys):
    code, out, err = run_cli(capsys, *commands(runs, tmp_path)[command], "--device", "cpu")
    assert code == 0, err
    assert out


@pytest.mark.parametrize("command", ["sample", "interpolate", "evaluate", "generate"])
@pytest.mark.parametrize(
    "device, message",
    [("tpu7", "unknown device 'tpu7'"), ("meta", "unknown device 'meta'"), ("cuda:99", "cuda")],
)
def test_an_unknown_or_missing_device_is_a_one_line_error(
    runs, command, device, message, tmp_path, capsys
):
    code, _, err = run_cli(capsys, *commands(runs, tmp_path)[command], "--device", device)
    assert_one_line_error(code, err, message)
    assert not list(tmp_path.iterdir()), "nothing is written for a refused device"


def test_load_resolves_auto_to_a_device_of_this_machine(runs):
    import torch

    from genlab.api import load

    model = load(runs["dcgan"], device="auto")
    expected = (
        "cuda"
        if torch.cuda.is_available()
        else "mps"
        if torch.backends.mps.is_available()
        else "cpu"
    )
    assert next(model.parameters()).device.type == expected
