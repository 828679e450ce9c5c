"""The offline digit classifier: accuracy, cache, protocol, and digit-feature metrics."""

from __future__ import annotations

import pytest
import torch

from genlab.data import load_dataset
from genlab.metrics.digits import (
    MIN_ACCURACY,
    DigitsConfig,
    accuracy,
    cache_path,
    load_classifier,
    load_digits_extractor,
)
from genlab.metrics.features import dataset_batches, extract
from genlab.metrics.fid import fid_from_features
from genlab.metrics.inception_score import inception_score


@pytest.fixture(scope="module")
def test_digits() -> tuple[torch.Tensor, torch.Tensor]:
    data = load_dataset("mnist-5k", "test")
    x, y = data.batch(torch.arange(len(data)))
    return x, y


def test_classifier_reaches_its_accuracy(digits_extractor, test_digits):
    x, y = test_digits
    assert len(x) == 500
    measured = accuracy(digits_extractor.network, x, y)
    assert measured >= MIN_ACCURACY
    # the same function, weights and batch shape as at training time, so the same count;
    # the metadata keeps 4 decimals, which hold every multiple of 1/500 exactly
    assert float(digits_extractor.metadata["test_accuracy"]) == pytest.approx(measured, abs=1e-4)
    described = digits_extractor.describe()
    assert described["dim"] == 128 and described["test_accuracy"] >= MIN_ACCURACY
    assert described["weights"] == cache_path().name and len(described["weights_sha256"]) == 64


def test_classifier_is_cached_not_retrained(digits_extractor):
    path = cache_path()
    assert path.is_file() and path.suffix == ".safetensors"
    stamp = path.stat().st_mtime_ns
    again = load_digits_extractor(train=False)  # would raise if it had to train
    assert path.stat().st_mtime_ns == stamp
    assert again.describe()["weights_sha256"] == digits_extractor.describe()["weights_sha256"]
    # another config is another file: the hash names the recipe
    assert cache_path(DigitsConfig(epochs=3)) != path
    with pytest.raises(Exception, match="not found"):
        load_classifier(DigitsConfig(epochs=3), train=False)


def test_features_are_batch_size_independent(digits_extractor, test_digits):
    x, _ = test_digits
    x = x[:64]
    whole = extract(digits_extractor, [x], outputs=("features", "logits"))
    for batch in (1, 10):
        parts = extract(
            digits_extractor,
            (x[i : i + batch] for i in range(0, 64, batch)),
            outputs=("features", "logits"),
        )
        # Another batch shape may sum in another order: a reordered float32 sum of K terms
        # moves by ~sqrt(K) eps of the terms' size (K <= 2352 in the fc layer, eps = 1.2e-7:
        # 6e-6 per layer, O(1) terms, three accumulating layers); 1e-4 is 5x that.
        for name in ("features", "logits"):
            torch.testing.assert_close(parts[name], whole[name], rtol=1e-4, atol=1e-4)
    # RGB copies of grey digits: the channel mean's last-bit error is rounded away by the 8-bit
    # quantization, so the network sees the same input: the same features, exactly
    rgb = extract(digits_extractor, [x.expand(-1, 3, -1, -1)])["features"]
    torch.testing.assert_close(rgb, whole["features"], rtol=0, atol=0)


def test_digit_metrics_on_real_data(digits_extractor):
    test = load_dataset("mnist-5k", "test")
    train = load_dataset("mnist-5k", "train")
    f_test = extract(digits_extractor, dataset_batches(test, 250), outputs=("features", "logits"))
    # all of train: its examples are ordered by class, so a prefix would hold only 0s and 1s
    f_train = extract(digits_extractor, dataset_batches(train, 500))["features"]
    # identical features, 500 rows > 128 dims: FID = 0 up to ~D eps64 |S| (|S| ~ 100 here)
    assert fid_from_features(f_test["features"], f_test["features"])["fid"] == pytest.approx(
        0, abs=1e-6
    )
    real_vs_real = fid_from_features(f_train, f_test["features"])["fid"]
    noise = extract(digits_extractor, [torch.rand(500, 1, 28, 28)])["features"]
    real_vs_noise = fid_from_features(noise, f_test["features"])["fid"]
    assert real_vs_noise > 50 * real_vs_real
    # confident, balanced predictions on real digits: IS(digits) near its maximum of 10
    assert inception_score(f_test["logits"])["is_mean"] > 8
