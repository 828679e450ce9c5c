"""genlab train espcn --data photos, then genlab upscale and genlab evaluate; one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.cli import main

TINY = ["-o", "n1=4", "-o", "n2=4", "-o", "scale=2", "-o", "data.image_size=48"]
TINY += ["-o", "train.batch_size=4", "-o", "train.sample_n=2", "-o", "train.eval_batches=1"]


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


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sr") / "run"
    args = ["train", "espcn", "--data", "photos", "--steps", "4", "--out", str(out), "-q", *TINY]
    assert main(args) == 0
    return out


@pytest.fixture
def picture(tmp_path) -> Path:
    path = tmp_path / "small.png"
    array = (torch.rand(30, 41, 3) * 255).to(torch.uint8).numpy()
    Image.fromarray(array).save(path)
    return path


def test_upscale_writes_an_image_scale_times_larger(trained, picture, tmp_path, capsys):
    out = tmp_path / "big.png"
    code, stdout, err = run_cli(capsys, "upscale", picture, "--model", trained, "--out", out)
    assert code == 0, err
    assert pixels(out).shape == (60, 82, 3) and "wrote" in stdout
    tiled = tmp_path / "tiled.png"
    code, _, err = run_cli(
        capsys, "upscale", picture, "--model", trained, "--out", tiled, "--tile", "16"
    )
    assert code == 0, err
    # the tiles overlap by the receptive radius: the same 8-bit image (up to rare rounding)
    assert np.abs(pixels(out) - pixels(tiled)).max() <= 1


def test_evaluate_reports_psnr_ssim_and_the_bicubic_baseline(trained, capsys):
    code, _, err = run_cli(capsys, "evaluate", trained)
    assert code == 0, err
    result = json.loads((trained / "eval.json").read_text())
    for key in ("psnr_y", "ssim_y", "psnr_y_baseline", "ssim_y_baseline", "test_loss"):
        assert isinstance(result[key], float), key
    assert 15 < result["psnr_y_baseline"] < 50 and result["crop_border"] == 2
    assert result["lpips"] is None and result["lpips_weights"].startswith("unavailable")
    assert "psnr_y" in result["definitions"]


def test_bad_image_files_are_one_line_errors(trained, tmp_path, capsys):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("not an image\n")
    good = tmp_path / "good.png"
    Image.fromarray((torch.rand(20, 20, 3) * 255).to(torch.uint8).numpy()).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    cases = [
        (empty, "empty file"),
        (text, "not an image"),
        (truncated, "truncated.png"),
        (tmp_path / "missing.png", "no such file"),
    ]
    for path, fragment in cases:
        code, _, err = run_cli(
            capsys, "upscale", path, "--model", trained, "--out", tmp_path / "o.png"
        )
        assert_one_line_error(code, err, fragment)
    code, _, err = run_cli(
        capsys, "upscale", good, "--model", trained, "--out", tmp_path / "o.png", "--tile", "4"
    )
    assert_one_line_error(code, err, "tile")


def test_srgan_starts_from_an_srresnet_run(tmp_path, capsys):
    """--init-from with an SRResNet run copies its generator into a new SRGAN (the paper's
    start, contract.WarmStartable); other models and other generators are one-line refusals."""
    from genlab.api import load

    shared = ["--data", "photos", "--steps", "1", "-q", "-o", "scale=2", "-o", "channels=4"]
    shared += ["-o", "blocks=1", "-o", "data.image_size=24", "-o", "train.batch_size=2"]
    shared += ["-o", "train.sample_n=2", "-o", "train.eval_batches=1"]
    source = tmp_path / "srresnet"
    assert main(["train", "srresnet", *shared, "--out", str(source)]) == 0
    srgan = tmp_path / "srgan"
    code, _, err = run_cli(
        capsys, "train", "srgan", *shared, "-o", "train.lr_g=1e-12", "--init-from", source,
        "--out", srgan, "-o", "d_width=4", "-o", "d_dense=8", "-o", "content_layer=pixel",
    )  # fmt: skip
    assert code == 0, err
    # one Adam step of 1e-12 later, G's parameters are still SRResNet's (a fresh G's differ by ~0.1)
    started = dict(load(srgan).generator.named_parameters())
    trained = dict(load(source).generator.named_parameters())
    assert started.keys() == trained.keys()
    assert all(torch.allclose(started[k], trained[k], rtol=0, atol=1e-9) for k in trained)
    assert json.loads((srgan / "config.json").read_text())["init_from"] == str(source)

    wider = [*shared, "-o", "channels=8", "--init-from", source, "--out", tmp_path / "no"]
    code, _, err = run_cli(capsys, "train", "srgan", *wider)
    assert_one_line_error(code, err, "cannot start srgan from", "channels 4 (SRGAN: 8)")
    assert not (tmp_path / "no").exists()
    code, _, err = run_cli(
        capsys, "train", "espcn", *shared, "--init-from", source, "--out", tmp_path / "no"
    )
    assert_one_line_error(code, err, "holds a srresnet run; espcn starts from a espcn run")
