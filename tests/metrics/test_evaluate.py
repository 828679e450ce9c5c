"""Sample metrics end to end: evaluate_samples, `genlab evaluate --metrics`, `genlab fid`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from genlab.cli import main
from genlab.data import load_dataset
from genlab.errors import GenlabError
from genlab.metrics.evaluate import (
    SampleMetricOptions,
    evaluate_samples,
    fid_between,
    parse_metrics,
)
from genlab.metrics.fid import MetricWarning


class Replay(nn.Module):
    """A 'generator' that returns real digits (or noise): the best (and worst) possible model."""

    def __init__(self, images: torch.Tensor, noise: bool = False):
        super().__init__()
        self.register_buffer("images", images)
        self.noise = noise
        self.decoder = nn.Linear(4, 28 * 28)

    def sample(self, n, *, generator=None, **cond):
        if self.noise:
            return torch.rand(n, 1, 28, 28, generator=generator)
        return self.images[torch.randint(len(self.images), (n,), generator=generator)]

    # the latent-space protocol, for PPL
    def sample_latent(self, n, *, generator=None):
        return torch.randn(n, 4, generator=generator)

    def generate(self, z):
        return torch.sigmoid(self.decoder(z)).view(-1, 1, 28, 28)


@pytest.fixture(scope="module")
def digits() -> dict[str, object]:
    test = load_dataset("mnist-5k", "test")
    train = load_dataset("mnist-5k", "train")
    return {"test": test, "train_images": train.batch(torch.arange(len(train)))[0]}


def options(**kwargs) -> SampleMetricOptions:
    return SampleMetricOptions(**{"features": "digits", "n": 500, "batch_size": 100, **kwargs})


def test_metric_names_are_checked():
    assert parse_metrics("fid, KID,is,fid") == ("fid", "kid", "is")
    with pytest.raises(GenlabError, match="did you mean: fid"):
        parse_metrics("fdi")
    with pytest.raises(GenlabError, match="inception or digits"):
        evaluate_samples(
            Replay(torch.zeros(1, 1, 28, 28)), None, {}, options(features="clip", metrics=("fid",))
        )


def test_real_digits_score_well_and_noise_badly(digits_extractor, digits):
    reference_id = {"data": "mnist-5k", "options": {}, "split": "test"}
    metrics = ("fid", "kid", "is", "pr", "ppl")
    good = evaluate_samples(
        Replay(digits["train_images"]), digits["test"], reference_id, options(metrics=metrics)
    )
    bad = evaluate_samples(
        Replay(digits["train_images"], noise=True),
        digits["test"],
        reference_id,
        options(metrics=metrics[:4]),
    )
    assert good["fid_digits"] * 30 < bad["fid_digits"]
    assert abs(good["kid_digits_mean"]) * 30 < bad["kid_digits_mean"]
    assert good["is_digits_mean"] > 8 > bad["is_digits_mean"]
    assert good["precision_digits"] > 0.8 and good["recall_digits"] > 0.8
    assert bad["precision_digits"] < 0.05
    assert np.isfinite(good["ppl_digits"]) and good["ppl_digits"] > 0
    entry = good["sample_metrics"]["fid_digits"]
    assert entry["n_generated"] == 500 and entry["n_reference"] == 500
    assert len(entry["features"]["weights_sha256"]) == 64
    assert entry["features"]["protocol"]["resize"].startswith("TF1")
    cache = Path(entry["reference"]["cache"])
    assert cache.is_file()  # the reference statistics are cached ...
    stamp = cache.stat().st_mtime_ns
    again = evaluate_samples(
        Replay(digits["train_images"]), digits["test"], reference_id, options(metrics=("fid",))
    )
    assert again["fid_digits"] == pytest.approx(good["fid_digits"], rel=1e-12)
    assert cache.stat().st_mtime_ns == stamp  # ... and reused
    assert good["sample_metrics"]["ppl_digits"]["ppl_protocol"]["epsilon"] == 1e-4


def test_sample_metrics_are_batch_size_independent(digits_extractor, digits):
    reference_id = {"data": "mnist-5k", "options": {}, "split": "test"}
    model = Replay(digits["train_images"])
    results = [
        evaluate_samples(
            model,
            digits["test"],
            reference_id,
            options(metrics=("fid", "kid", "is", "pr"), batch_size=b),
        )
        for b in (50, 500)
    ]
    for key in (
        "fid_digits",
        "kid_digits_mean",
        "is_digits_mean",
        "precision_digits",
        "recall_digits",
    ):
        assert results[0][key] == pytest.approx(results[1][key], rel=1e-5, abs=1e-9), key


def test_inception_without_weights_is_a_clear_error(digits):
    with pytest.raises(GenlabError, match=r"pt_inception-2015-12-05-6726825d\.pth"):
        evaluate_samples(
            Replay(digits["train_images"]),
            digits["test"],
            {},
            options(features="inception", metrics=("fid",)),
        )


# --- folders and statistics files ---------------------------------------------------------------
def write_pngs(folder: Path, images: torch.Tensor) -> Path:
    from genlab.imaging import save_image

    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        save_image(image, folder / f"{i:04d}.png")
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory, digits) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fid")
    gen = torch.Generator().manual_seed(0)
    images = digits["train_images"][torch.randperm(4000, generator=gen)[:400]]
    return write_pngs(root / "a", images[:200]), write_pngs(root / "b", images[200:])


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fid_command_on_folders_and_statistics(digits_extractor, folders, tmp_path, capsys):
    a, b = folders
    code, out, err = run_cli(capsys, "fid", a, b, "--features", "digits", "--batch-size", "64")
    assert code == 0, err
    value = json.loads(out)["fid_digits"]
    assert value > 0 and json.loads(out)["n1"] == 200
    stats = tmp_path / "a.npz"
    code, out, err = run_cli(capsys, "fid", a, stats, "--features", "digits", "--save-stats")
    assert code == 0 and stats.is_file(), err
    code, out, err = run_cli(capsys, "fid", stats, b, "--features", "digits")
    assert code == 0, err
    assert json.loads(out)["fid_digits"] == pytest.approx(value, rel=1e-9)
    # batch size and image order do not matter; a folder of mixed sizes works
    assert fid_between(a, b, features="digits", batch_size=7)["fid_digits"] == pytest.approx(
        value, rel=1e-6
    )


def test_fid_command_errors_are_one_line(digits_extractor, folders, tmp_path, capsys):
    a, _ = folders
    (tmp_path / "empty").mkdir()
    np.savez(
        tmp_path / "other.npz",
        mu=np.zeros(3),
        sigma=np.eye(3),
        extractor=json.dumps({"extractor": "inception-v3-fid"}),
    )
    for args, fragment in (
        ((a, tmp_path / "empty"), "no images"),
        ((a, tmp_path / "missing"), "neither a folder"),
        ((tmp_path / "other.npz", a), "inception-v3-fid"),
        ((a, a, "--features", "clip"), "inception or digits"),
    ):
        if "--features" not in args:
            args = (*args, "--features", "digits")
        code, _, err = run_cli(capsys, "fid", *args)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and fragment in lines[0], err


def test_mixed_size_folder(digits_extractor, tmp_path):
    images = torch.rand(6, 1, 28, 28)
    folder = write_pngs(tmp_path / "mixed", images[:3])
    from genlab.imaging import save_image

    for i in range(3):
        save_image(torch.rand(3, 40, 32), folder / f"big{i}.png")
    with pytest.warns(MetricWarning):  # 6 images < 128 feature dimensions
        result = fid_between(folder, folder, features="digits", batch_size=4)
    assert result["fid_digits"] == pytest.approx(0, abs=1e-3) and result["n1"] == 6  # rank 5


# --- genlab evaluate RUN --metrics ----------------------------------------------------------------
TINY_VAE = ["-o", "channels=4", "-o", "blocks_high=0", "-o", "blocks_low=1", "-o", "latent_dim=2"]
TINY_VAE += ["-o", "iwae_k=4", "-o", "train.batch_size=16", "-o", "train.eval_every=5"]


def test_evaluate_command_with_metrics(digits_extractor, tmp_path, capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "train", "vae", "--data", "mnist-5k", "--steps", "5", "--out", run, "-q", *TINY_VAE
    )
    assert code == 0, err
    code, out, err = run_cli(capsys, "evaluate", run, "--no-figures")  # the default: NLL
    assert code == 0, err
    assert "nll_nats" in json.loads(out) and "fid_digits" not in json.loads(out)
    code, out, err = run_cli(
        capsys,
        "evaluate",
        run,
        "--metrics",
        "fid,kid,is,pr",
        "--features",
        "digits",
        "--n",
        "200",
        "--no-figures",
    )
    assert code == 0, err
    saved = json.loads((run / "eval.json").read_text())
    for key in ("fid_digits", "kid_digits_mean", "is_digits_mean", "precision_digits", "nll_nats"):
        assert key in saved, key
    assert saved["sample_metrics"]["fid_digits"]["n_generated"] == 200
    for args, fragment in (
        (("--metrics", "ppl", "--features", "digits"), "latent-space generator"),
        (("--metrics", "fdi"), "unknown metric"),
        (("--metrics", "fid", "--features", "clip"), "inception or digits"),
    ):
        code, _, err = run_cli(capsys, "evaluate", run, "--no-figures", "--n", "20", *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
