"""The autoregressive models from the command line: train, sample (with --label), evaluate, and
bad configurations as one-line errors."""

from __future__ import annotations

import json
import math

import pytest
from PIL import Image

from test_cli import assert_one_line_error, run_cli

TINY = ["-o", "hidden=4", "-o", "layers=1", "-o", "head=4", "-o", "train.batch_size=16"]


def test_conditional_gated_pixelcnn_train_sample_label_evaluate(tmp_path, capsys):
    run = tmp_path / "gated"
    args = ["--data", "digits", "--steps", "3", "--out", run, "-q", *TINY]
    code, _, err = run_cli(
        capsys, "train", "gated-pixelcnn", *args, "-o", "binarize=true", "-o", "conditional=true"
    )
    assert code == 0, err
    grid = tmp_path / "sevens.png"
    code, _, err = run_cli(capsys, "sample", run, "--n", "4", "--label", "7", "--out", grid)
    assert code == 0, err
    with Image.open(grid) as image:
        assert image.size[0] > 8
    code, _, err = run_cli(capsys, "sample", run, "--label", "10", "--out", tmp_path / "x.png")
    assert_one_line_error(code, err, "labels must be one class")
    code, _, err = run_cli(capsys, "evaluate", run)
    assert code == 0, err
    result = json.loads((run / "eval.json").read_text())
    assert math.isfinite(result["nll_nats"]) and 0 < result["bits_per_dim"] < 2
    assert result["bits_per_dim"] == pytest.approx(result["nll_nats"] / (64 * math.log(2)))
    expected = {"figures/samples.png", "figures/completions.png", "figures/receptive_field.png"}
    assert expected <= set(result["figures"])


def test_label_for_an_unconditional_model_is_an_error(tmp_path, capsys):
    run = tmp_path / "pixelcnn"
    tiny = ["-o", "hidden=4", "-o", "blocks=1", "-o", "head=4"]
    code, _, err = run_cli(
        capsys, "train", "pixelcnn", "--data", "digits", "--steps", "2", "--out", run, "-q", *tiny
    )
    assert code == 0, err
    code, _, err = run_cli(capsys, "sample", run, "--label", "3", "--out", tmp_path / "x.png")
    assert_one_line_error(code, err, "not class-conditional")


@pytest.mark.parametrize(
    "overrides,fragment",
    [
        (["kernel=4"], "kernel and first_kernel must be odd"),
        (["output=softmax"], "output must be one of"),
        (["binarize=true", "output=logistic_mixture"], "binarized data has Bernoulli outputs"),
        (["mixtures=0"], "mixtures must be >= 1"),
        (["hidden=0"], "must be >= 1"),
    ],
)
def test_bad_configuration_is_one_line_and_exit_2(tmp_path, capsys, overrides, fragment):
    extra = [a for o in overrides for a in ("-o", o)]
    code, _, err = run_cli(
        capsys, "train", "gated-pixelcnn", "--data", "digits", "--steps", "1",
        "--out", tmp_path / "run", "-q", *extra,
    )  # fmt: skip
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "run").exists()
