"""genlab stylize (optimisation and --model), genlab train fast-style / adain; one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.cli import main

DATA = ["--data", "photos", "-o", "data.image_size=32", "-q"]
TRAIN = ["-o", "train.batch_size=2", "-o", "train.sample_n=2", "-o", "train.eval_batches=1"]
FAST = ["-o", "width=4", "-o", "blocks=1", "-o", "style_size=32", "-o", "content_layer=relu1_2"]
FAST += ["-o", "style_layers=[relu1_1,relu2_1]"]
ADAIN = ["-o", "encoder_layer=relu2_1", "-o", "style_size=16"]


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as picture:
        return np.asarray(picture, dtype=np.int16)


@pytest.fixture
def content(tmp_path) -> Path:
    path = tmp_path / "content.png"
    x = torch.linspace(0, 1, 45)[None, :, None] * torch.linspace(0, 1, 30)[None, None, :]
    array = (torch.cat([x, x.flip(1), 1 - x]).permute(1, 2, 0) * 255).to(torch.uint8).numpy()
    Image.fromarray(array).save(path)  # 45 rows, 30 columns, colourful
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A fast-style run trained on a style FILE (deleted afterwards) and an AdaIN run."""
    folder = tmp_path_factory.mktemp("style-runs")
    style = folder / "my-style.png"
    Image.fromarray((np.random.default_rng(0).random((24, 24, 3)) * 255).astype(np.uint8)).save(
        style
    )
    fast, ada = folder / "fast", folder / "adain"
    base = ["--steps", "2", *DATA, *TRAIN]
    assert (
        main(["train", "fast-style", "--out", str(fast), "-o", f"style={style}", *base, *FAST]) == 0
    )
    assert main(["train", "adain", "--out", str(ada), *base, *ADAIN]) == 0
    style.unlink()  # the run keeps its own copy
    return {"fast-style": fast, "adain": ada}


def test_training_keeps_the_style_and_writes_samples(runs):
    assert (runs["fast-style"] / "style.png").is_file()
    assert pixels(runs["fast-style"] / "style.png").shape == (32, 32, 3)  # at style_size
    for run in runs.values():
        assert list((run / "samples").glob("*.png")), run


def test_stylize_with_a_fast_style_run(runs, content, tmp_path, capsys):
    out = tmp_path / "out.png"
    code, stdout, err = run_cli(
        capsys, "stylize", content, "--model", runs["fast-style"], "--out", out
    )
    assert code == 0, err
    assert pixels(out).shape == (45, 30, 3) and "wrote" in stdout
    code, _, err = run_cli(capsys, "stylize", content, "--model", runs["fast-style"], "--out", out,
                           "--style", "mosaic")  # fmt: skip
    assert_one_line_error(code, err, "--style")


def test_stylize_with_an_adain_run_alpha_and_interpolation(runs, content, tmp_path, capsys):
    run, out = runs["adain"], tmp_path / "out.png"
    code, _, err = run_cli(capsys, "stylize", content, "--model", run, "--style", "mosaic",
                           "--alpha", "0.5", "--out", out)  # fmt: skip
    assert code == 0, err
    half = pixels(out)
    assert half.shape == (45, 30, 3)
    code, _, err = run_cli(capsys, "stylize", content, "--model", run, "--style", "mosaic",
                           "--alpha", "0", "--out", out)  # fmt: skip
    assert code == 0 and not np.array_equal(pixels(out), half), err
    code, _, err = run_cli(capsys, "stylize", content, "--model", run, "--style", "mosaic:1",
                           "--style", "waves:3", "--out", out)  # fmt: skip
    assert code == 0 and pixels(out).shape == (45, 30, 3), err
    code, _, err = run_cli(capsys, "stylize", content, "--model", run, "--out", out)
    assert_one_line_error(code, err, "style")
    code, _, err = run_cli(capsys, "stylize", content, "--model", run, "--style", "mosaic",
                           "--alpha", "2", "--out", out)  # fmt: skip
    assert_one_line_error(code, err, "alpha")


def test_stylize_by_optimisation_writes_the_image_and_a_gif(content, tmp_path, capsys):
    out, gif = tmp_path / "out.png", tmp_path / "progress.gif"
    code, stdout, err = run_cli(capsys, "stylize", content, "--style", "mosaic:2", "--style",
                                "swirl", "--size", "32", "--steps", "3", "--out", out, "--gif",
                                gif, "--preserve-color")  # fmt: skip
    assert code == 0, err
    assert pixels(out).shape == (32, 21, 3) and f"wrote {gif}" in stdout
    with Image.open(gif) as animation:
        assert animation.n_frames >= 3


@pytest.mark.parametrize(
    "arguments, fragments",
    [
        (["missing.png", "--style", "mosaic"], ["missing.png", "no such file"]),
        (["NOT_AN_IMAGE", "--style", "mosaic"], ["not an image"]),
        (["CONTENT", "--style", "no-such-style"], ["no-such-style", "built-in"]),
        (["CONTENT", "--style", "mosaic:-1"], ["weight"]),
        (["CONTENT"], ["--style"]),
        (["CONTENT", "--style", "mosaic", "--optimizer", "sgd"], ["optimizer"]),
        (["CONTENT", "--style", "mosaic", "--alpha", "0.5"], ["--alpha"]),
        (["CONTENT", "--style", "NOT_AN_IMAGE"], ["not an image"]),
        (["CONTENT", "--model", "RUN", "--steps", "5"], ["--steps", "--model"]),
        (["CONTENT", "--model", "no-such-run"], ["no-such-run"]),
    ],
)
def test_stylize_errors_are_one_line(arguments, fragments, content, tmp_path, capsys):
    junk = tmp_path / "junk.png"
    junk.write_text("this is not a picture")
    names = {"CONTENT": content, "NOT_AN_IMAGE": junk, "RUN": tmp_path}
    arguments = [names.get(a, a) for a in arguments]
    code, _, err = run_cli(capsys, "stylize", *arguments, "--out", tmp_path / "out.png")
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "out.png").exists()
