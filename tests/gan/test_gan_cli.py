"""GANs through the command line: train, resume, sample with --label/--truncation, interpolate,
presets, evaluate with digit features; bad input is one line and exit 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from genlab.cli import main

sys.path.insert(0, str(Path(__file__).parents[1]))
from test_cli import assert_one_line_error, run_cli

TINY = ["-o", "z_dim=4", "-o", "g_width=4", "-o", "d_width=4", "-o", "embed_dim=3"]
TRAIN = ["-o", "train.batch_size=16", "-o", "train.checkpoint_every=4", "-o", "train.log_every=2"]


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gan") / "cgan"
    args = ["train", "cgan", "--data", "digits", "--steps", "6", "--out", out, "-q", *TINY, *TRAIN]
    assert main([str(a) for a in args]) == 0
    return out


def test_train_writes_a_gan_run_and_resume_extends_it(cgan_run, capsys, tmp_path):
    import shutil

    config = json.loads((cgan_run / "config.json").read_text())
    assert config["model"] == "cgan" and config["train"]["n_critic"] == 1
    assert config["model_config"]["num_classes"] == 10  # filled from the data
    assert (cgan_run / "samples" / "step-00000006.png").is_file()
    header = (cgan_run / "metrics.csv").read_text().splitlines()[0]
    for column in ("d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm"):
        assert column in header
    copy = tmp_path / "copy"
    shutil.copytree(cgan_run, copy)
    code, _, err = run_cli(capsys, "train", "cgan", "--out", copy, "--resume", "--steps", "8", "-q")
    assert code == 0, err
    assert (copy / "checkpoints" / "step-00000008").is_dir()


def test_sample_with_a_label_draws_that_class(cgan_run, capsys, tmp_path):
    from PIL import Image

    code, _, err = run_cli(
        capsys, "sample", cgan_run, "--n", "4", "--label", "3", "--out", tmp_path / "s.png"
    )
    assert code == 0, err
    with Image.open(tmp_path / "s.png") as picture:
        assert picture.size[0] > 8
    code, _, err = run_cli(capsys, "sample", cgan_run, "--label", "11", "--out", tmp_path / "x.png")
    assert_one_line_error(code, err, "classes in 0..9")
    code, _, err = run_cli(
        capsys, "sample", cgan_run, "--truncation", "0.5", "--out", tmp_path / "x.png"
    )
    assert_one_line_error(code, err, "CGAN does not take --truncation")


def test_interpolate_writes_a_looping_gif(cgan_run, capsys, tmp_path):
    from PIL import Image

    out = tmp_path / "walk.gif"
    code, _, err = run_cli(
        capsys,
        "interpolate",
        cgan_run,
        "--out",
        out,
        "--walks",
        "3",
        "--keyframes",
        "2",
        "--frames",
        "5",
    )
    assert code == 0, err
    with Image.open(out) as gif:
        assert gif.n_frames == 10 and gif.info.get("loop") == 0
    code, _, err = run_cli(capsys, "interpolate", cgan_run, "--out", tmp_path / "walk.png")
    assert_one_line_error(code, err, "must name a .gif")
    code, _, err = run_cli(capsys, "interpolate", cgan_run, "--out", out, "--keyframes", "1")
    assert_one_line_error(code, err, "--keyframes must be at least 2")


def test_interpolation_passes_through_the_keyframes(cgan_run):
    """Frame 0 of each segment is exactly the keyframe's image (slerp at t = 0)."""
    from genlab.api import load
    from genlab.metrics.ppl import slerp

    model = load(cgan_run)
    z = model.sample_latent(3, generator=torch.Generator().manual_seed(0))
    w = model.sample_latent(3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        at_zero = model.generate(slerp(z, w, torch.zeros(3)))
        at_one = model.generate(slerp(z, w, torch.ones(3)))
        # slerp at t = 0 or 1 returns the endpoint up to float32 rounding of sin/cos (~1e-7);
        # the generator carries that into [0, 1] pixels (measured: 1/250 of 1e-5)
        assert torch.allclose(at_zero, model.generate(z), atol=1e-5)
        assert torch.allclose(at_one, model.generate(w), atol=1e-5)


def test_evaluate_a_gan_with_digit_features(cgan_run, capsys, digits_extractor):
    code, _, err = run_cli(
        capsys, "evaluate", cgan_run, "--metrics", "fid,ppl", "--features", "digits", "--n", "200"
    )
    assert code == 0, err
    result = json.loads((cgan_run / "eval.json").read_text())
    assert result["fid_digits"] > 0 and result["ppl_digits"] >= 0
    assert (cgan_run / result["figures"][0]).is_file()  # the class grid


def test_presets_layer_under_the_options(capsys, tmp_path):
    out = tmp_path / "p"
    code, _, err = run_cli(
        capsys, "train", "dcgan", "--data", "digits", "--preset", "gpu", "--steps", "2",
        "--out", out, "-q", "-o", "g_width=4", "-o", "train.batch_size=8",
    )  # fmt: skip
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["preset"] == "gpu"
    assert config["model_config"]["d_width"] == 128 and config["model_config"]["g_width"] == 4
    assert config["train"]["batch_size"] == 8 and config["train"]["steps"] == 2
    code, _, err = run_cli(
        capsys, "train", "dcgan", "--data", "digits", "--preset", "tpu", "--out", tmp_path / "q"
    )
    assert_one_line_error(code, err, "dcgan has no preset 'tpu'", "gpu")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "cgan", "--data", "toy2d:moons"], ["needs labelled data"]),
        (["train", "dcgan", "--data", "lfw", "-o", "data.image_size=25"], ["image size 25"]),
        (
            ["train", "dcgan", "--data", "digits", "-o", "loss=least-squares"],
            ["loss must be one of"],
        ),
        (
            ["train", "dcgan", "--data", "digits", "-o", "train.augment=flip"],
            ["unknown augmentation"],
        ),
        (
            ["train", "wgan-gp", "--data", "digits", "-o", "d_norm=batch"],
            ["expected one of layer, none"],
        ),
        (
            ["train", "wgan", "--data", "digits", "-o", "train.n_critic=0"],
            ["n_critic must be >= 1"],
        ),
    ],
)
def test_bad_gan_settings_are_one_line_errors(args, fragments, capsys, tmp_path):
    code, _, err = run_cli(capsys, *args, "--out", tmp_path / "run", "-q")
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "run" / "model.safetensors").exists()


STYLE_TINY = ["z_dim=8", "w_dim=8", "mapping_layers=2", "channel_base=32", "channel_max=8"]


def test_stylegan_from_the_command_line(capsys, tmp_path, digits_extractor):
    from PIL import Image

    run = tmp_path / "sg"
    options = [a for o in [*STYLE_TINY, "train.batch_size=8"] for a in ("-o", o)]
    code, _, err = run_cli(
        capsys,
        "train",
        "stylegan",
        "--data",
        "digits",
        "--steps",
        "3",
        "--out",
        run,
        "-q",
        *options,
    )
    assert code == 0, err
    code, _, err = run_cli(
        capsys, "sample", run, "--truncation", "0.5", "--out", tmp_path / "t.png"
    )
    assert code == 0, err
    code, _, err = run_cli(capsys, "interpolate", run, "--out", tmp_path / "w.gif", "--frames", "2")
    assert code == 0, err
    with Image.open(tmp_path / "w.gif") as gif:
        assert gif.n_frames == 8  # 4 keyframes x 2 frames
    code, _, err = run_cli(
        capsys, "evaluate", run, "--metrics", "ppl", "--features", "digits", "--n", "200",
        "--ppl-space", "w",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads((run / "eval.json").read_text())
    assert result["sample_metrics"]["ppl_digits"]["ppl_protocol"]["space"] == "w"
    assert {Path(f).name for f in result["figures"]} == {
        "samples.png",
        "truncation.png",
        "style_mixing.png",
    }


def test_ppl_in_w_space_needs_a_mapping_network(cgan_run, capsys):
    code, _, err = run_cli(
        capsys, "evaluate", cgan_run, "--metrics", "ppl", "--features", "digits", "--n", "200",
        "--ppl-space", "w",
    )  # fmt: skip
    assert_one_line_error(code, err, "no mapping/synthesis")
