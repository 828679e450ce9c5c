"""A new family plugs in by implementing protocols and registering names (issue 17).

tests/plugin/gaussian.py is a family genlab has never seen: a model class, a sample option and a
verb. Registering its names (registry.MODELS, registry.COMMANDS) is all it takes for the shared
commands to train it, sample it with its own flag, evaluate its likelihood and run its verb; and
the CLI imports a family's module only when one of its names is used.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from genlab import registry
from genlab.contract import HasSampleOptions, LikelihoodModel, trainer_module
from test_cli import assert_one_line_error, run_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def plugged(monkeypatch):
    monkeypatch.setitem(
        registry.MODELS, "gaussian", ("plugin.gaussian:Gaussian", "a diagonal Gaussian (a test)")
    )
    monkeypatch.setitem(
        registry.COMMANDS, "describe", ("plugin.gaussian:describe", "fitted mean and std")
    )


def test_a_registered_family_trains_samples_evaluates_and_adds_a_verb(plugged, tmp_path, capsys):
    cls = registry.model_class("gaussian")
    assert isinstance(cls, HasSampleOptions)
    assert isinstance(cls(cls.Config()), LikelihoodModel)
    assert trainer_module(cls).__name__ == "genlab.training.loop"
    run = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "train", "gaussian", "--data", "toy2d:8gaussians", "--steps", "60", "--out", run,
        "-q", "-o", "train.batch_size=64", "-o", "train.eval_every=30",
    )  # fmt: skip
    assert code == 0, err
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"] == "gaussian" and saved["model_config"]["data_shape"] == [2]
    code, _, err = run_cli(
        capsys, "sample", run, "--n", "32", "--spread", "0.5", "--out", tmp_path / "s.png"
    )
    assert code == 0, err
    assert (tmp_path / "s.png").stat().st_size > 0  # the scatter writer of "vector" samples
    code, _, err = run_cli(capsys, "sample", run, "--label", "1", "--out", tmp_path / "x.png")
    assert_one_line_error(code, err, "Gaussian does not take --label")
    code, _, err = run_cli(capsys, "sample", run, "--spread", "-1", "--out", tmp_path / "x.png")
    assert_one_line_error(code, err, "--spread must be a number >= 0")
    code, _, err = run_cli(capsys, "evaluate", run, "--no-figures")
    assert code == 0, err
    result = json.loads((run / "eval.json").read_text())
    assert result["test_loss"] == pytest.approx(result["nll_nats"], rel=1e-5)
    code, out, err = run_cli(capsys, "describe", run)
    assert code == 0, err
    assert out.startswith("mean [") and "std [" in out


def test_the_cli_imports_a_family_only_when_it_is_used():
    """`genlab --help` lists the families' verbs from the registry; what it imports to show
    their help is the verbs' module (genlab.text.commands), never a model or torch."""
    code = (
        "import sys; from genlab.cli import main; rc = main(['--help']); "
        "print('IMPORTED', sorted(m for m in sys.modules if m == 'torch' or m.startswith(("
        "'genlab.text.', 'genlab.gan', 'genlab.vae', 'genlab.flows', 'genlab.autoregressive'))"
        " and m != 'genlab.text.commands'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "generate" in done.stdout and "export" in done.stdout  # registry.COMMANDS
    assert "IMPORTED []" in done.stdout
