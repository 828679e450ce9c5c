"""Sample metrics end to end: evaluate_samples, `genlab evaluate --metrics`, `genlab fid`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from metric_helpers import randomize
from torch import nn

from genlab.cli import main
from genlab.data import load_dataset
from genlab.errors import GenlabError
from genlab.metrics.evaluate import (
    SampleMetricOptions,
    evaluate_samples,
    fid_between,
    parse_metrics,
    path_statistics,
)
from genlab.metrics.fid import MetricWarning, load_statistics
from genlab.metrics.inception import FIDInceptionV3


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
    # the same features (the cached reference is the computed one, bit for bit): the same FID
    assert again["fid_digits"] == good["fid_digits"]
    assert cache.stat().st_mtime_ns == stamp  # ... and reused
    assert good["sample_metrics"]["ppl_digits"]["ppl_protocol"]["epsilon"] == 1e-4


def test_sample_metrics_are_batch_size_independent(digits_extractor, digits):
    """Samples drawn 50 or 500 at a time are re-cut to the same feature batches (50), so the
    features are bit-identical and so is every number: exact equality, no tolerance. (Without
    the re-cut a batch of another shape may sum in another order: the last bits of the float32
    features change, and KID, a difference of large kernel means, cannot be compared tightly.)"""
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
        assert results[0][key] == results[1][key], key
    entry = results[1]["sample_metrics"]["fid_digits"]
    assert (entry["batch_size"], entry["feature_batch_size"], entry["protocol"]) == (
        500,
        50,
        "digits",
    )


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


def fid_tolerance(*statistics: dict, delta: float = 1e-6) -> float:
    """How far FID may move when every float32 feature vector moves by up to `delta` of its norm.

    Features computed in batches of another shape differ in their last bits: the convolution
    and matrix kernels may sum in another order, a few float32 ulps (eps = 1.2e-7) of each
    feature, so delta = 1e-6 (8 eps). FID is quadratic in the features: to first order
    |mu1 - mu2|^2, tr S1 + tr S2 and 2 tr (S1 S2)^(1/2) each move by at most 4 delta M, where
    M = E|f1|^2 + E|f2|^2 = sum of |mu|^2 + tr S; 16 delta M bounds their sum. The float64
    statistics and eigenvalues add ~1e-13 M, nothing next to it.
    """
    m = sum(float(s["mu"] @ s["mu"] + np.trace(s["sigma"])) for s in statistics)
    return 16 * delta * m


def test_fid_command_on_folders_and_statistics(digits_extractor, folders, tmp_path, capsys):
    a, b = folders
    batch = ("--features", "digits", "--batch-size", "64")
    code, out, err = run_cli(capsys, "fid", a, b, *batch)
    assert code == 0, err
    value = json.loads(out)["fid_digits"]
    assert value > 0 and json.loads(out)["n1"] == 200 and json.loads(out)["protocol"] == "digits"
    saved = {}
    for name, folder in (("a", a), ("b", b)):
        path = tmp_path / f"{name}.npz"
        code, out, err = run_cli(capsys, "fid", folder, path, *batch, "--save-stats")
        assert code == 0 and path.is_file(), err
        saved[name] = load_statistics(path)
    assert str(saved["a"]["protocol"]) == "digits"
    assert str(saved["a"]["feature_network"]) == digits_extractor.name
    # The same batch size on both sides: bit-identical features and statistics, the same
    # float64 arithmetic on them, so the number from the file is exactly the number from images.
    code, out, err = run_cli(capsys, "fid", tmp_path / "a.npz", b, *batch)
    assert code == 0, err
    assert json.loads(out)["fid_digits"] == value
    # Another batch size (7: 28 full batches and a partial one) changes only the last bits of
    # the features; the FID moves within what those bits allow (see fid_tolerance).
    other = fid_between(a, b, features="digits", batch_size=7)["fid_digits"]
    assert other == pytest.approx(value, rel=0, abs=fid_tolerance(saved["a"], saved["b"]))


def test_fid_command_errors_are_one_line(digits_extractor, folders, tmp_path, capsys):
    a, _ = folders
    (tmp_path / "empty").mkdir()
    np.savez(
        tmp_path / "other.npz",
        mu=np.zeros(3),
        sigma=np.eye(3),
        extractor=json.dumps({"extractor": "inception-v3-fid"}),
    )
    np.savez(tmp_path / "theirs.npz", mu=np.zeros(128), sigma=np.eye(128))  # pytorch-fid's
    for args, fragment in (
        ((a, tmp_path / "empty"), "no images"),
        ((a, tmp_path / "missing"), "neither a folder"),
        ((tmp_path / "other.npz", a), "inception-v3-fid"),
        ((a, a, "--features", "clip"), "inception or digits"),
        ((a, a, "--features", "inception", "--protocol", "pytorch_fid"), "unknown FID protocol"),
        ((a, a, "--protocol", "pytorch-fid"), "digit features have one protocol"),
        ((tmp_path / "theirs.npz", a), "does not record which protocol"),
        ((tmp_path / "theirs.npz", a, "--stats-protocol", "pytorch-fid"), "not comparable"),
        ((tmp_path / "theirs.npz", a, "--stats-protocol", "torch"), "unknown FID protocol"),
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
        sigma = path_statistics(folder, digits_extractor, batch_size=4)["sigma"]
    # Identical statistics: FID = 2 tr S - 2 sum sqrt(eig(S S)) is 0 up to the D - 5 zero
    # eigenvalues of S S (rank 5), which a float64 eigensolver returns as +-(D eps64) |S|^2 at
    # most: their square roots add at most 2 (D - 5) sqrt(D eps64) |S| to the FID.
    d = sigma.shape[0]
    tolerance = 2 * (d - 5) * np.sqrt(d * np.finfo(np.float64).eps) * np.linalg.norm(sigma, 2)
    assert result["fid_digits"] == pytest.approx(0, abs=tolerance) and result["n1"] == 6


@pytest.mark.filterwarnings("ignore::genlab.metrics.fid.MetricWarning")  # 3 images, 2048 dims
def test_pytorch_fid_protocol_end_to_end_and_statistics_origin(tmp_path, capsys):
    """Random Inception weights in the pt_inception layout; statistics files record their
    protocol and feature network, and a file of unknown origin needs --stats-protocol."""
    weights = tmp_path / "inception.pth"
    torch.save(randomize(FIDInceptionV3(), seed=0).state_dict(), weights)
    gen = torch.Generator().manual_seed(0)
    a = write_pngs(tmp_path / "a", torch.rand(3, 3, 20, 20, generator=gen))
    b = write_pngs(tmp_path / "b", torch.rand(3, 3, 20, 20, generator=gen))
    common = ("--weights", weights, "--batch-size", "3")
    saved = {}
    for name, folder, protocol in (
        ("a", a, "tf"),
        ("a", a, "pytorch-fid"),
        ("b", b, "pytorch-fid"),
    ):
        path = tmp_path / f"{name}-{protocol}.npz"
        code, out, err = run_cli(
            capsys, "fid", folder, path, "--save-stats", "--protocol", protocol, *common
        )
        assert code == 0 and json.loads(out)["protocol"] == protocol, err
        saved[name, protocol] = load_statistics(path)
    mine = saved["a", "pytorch-fid"]
    assert str(mine["protocol"]) == "pytorch-fid"
    assert (
        str(mine["feature_network"]) == "inception-v3-fid"
        and len(str(mine["weights_sha256"])) == 64
    )
    # the protocols feed the network other pixels: other statistics
    assert np.abs(saved["a", "tf"]["mu"] - mine["mu"]).max() > 1e-4 * np.abs(mine["mu"]).max()
    # a statistics file of another protocol is refused
    code, _, err = run_cli(capsys, "fid", tmp_path / "a-pytorch-fid.npz", b, *common)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "pytorch-fid protocol" in err, err
    # pytorch-fid's own files hold only mu and sigma: usable once the user says what made them
    theirs = tmp_path / "theirs.npz"
    np.savez(theirs, mu=mine["mu"], sigma=mine["sigma"])
    code, _, err = run_cli(capsys, "fid", theirs, tmp_path / "b-pytorch-fid.npz", *common)
    assert code == 2 and "--stats-protocol" in err, err
    code, out, err = run_cli(
        capsys,
        "fid",
        theirs,
        tmp_path / "b-pytorch-fid.npz",
        *("--stats-protocol", "pytorch-fid", "--protocol", "pytorch-fid"),
        *common,
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["protocol"] == "pytorch-fid" and "fid" not in result  # tf's key stays tf's
    assert np.isfinite(result["fid_pytorch_fid"]) and result["fid_pytorch_fid"] > 0


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
        (("--metrics", "fid", "--protocol", "pytorch_fid"), "unknown FID protocol"),
        (("--metrics", "fid", "--features", "digits", "--protocol", "tf"), "one protocol"),
    ):
        code, _, err = run_cli(capsys, "evaluate", run, "--no-figures", "--n", "20", *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
