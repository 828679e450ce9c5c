"""KID, Inception Score and precision/recall: closed forms and brute-force references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlab.errors import GenlabError
from genlab.metrics.inception_score import inception_score
from genlab.metrics.kid import kernel_distance, mmd2_unbiased
from genlab.metrics.precision_recall import knn_radii, precision_recall


# --- KID ----------------------------------------------------------------------------------------
def brute_force_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, written as explicit double loops."""
    m, d = x.shape
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_mmd_matches_brute_force():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((12, 5)), rng.standard_normal((12, 5)) + 0.5
    got = mmd2_unbiased(torch.from_numpy(x), torch.from_numpy(y))
    assert got == pytest.approx(brute_force_mmd(x, y), rel=1e-10)
    # one subset of the full size is exactly that MMD
    out = kernel_distance(x, y, subsets=1, subset_size=12)
    assert out["kid_mean"] == pytest.approx(brute_force_mmd(x, y), rel=1e-10)
    assert out["kid_std"] == 0


def test_kid_of_a_set_with_itself_is_about_zero():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((600, 16))
    same = kernel_distance(x, x, subsets=20, subset_size=200, seed=3)
    other = kernel_distance(x, x + 1.0, subsets=20, subset_size=200, seed=3)
    assert abs(same["kid_mean"]) < 3 * same["kid_std"] + 1e-3
    assert other["kid_mean"] > 100 * abs(same["kid_mean"])


def test_kid_is_seeded_and_caps_the_subset_size():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((50, 4)), rng.standard_normal((80, 4))
    a = kernel_distance(x, y, subsets=5, seed=7)
    assert a == kernel_distance(x, y, subsets=5, seed=7)
    assert a["kid_subset_size"] == 50
    with pytest.raises(GenlabError):
        kernel_distance(x[:1], y)


# --- Inception Score ------------------------------------------------------------------------------
def test_inception_score_uniform_predictions_is_one():
    out = inception_score(torch.zeros(100, 1008))
    assert out["is_mean"] == pytest.approx(1.0, abs=1e-12)
    assert out["is_std"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("k", [2, 10, 1008])
def test_inception_score_balanced_one_hot_is_k(k):
    n = 10 * k  # without the shuffle, every split holds each class once
    labels = torch.arange(n) % k
    logits = torch.full((n, k), -1e4)
    logits[torch.arange(n), labels] = 1e4  # exactly one-hot after the float64 softmax
    out = inception_score(logits, shuffle=False)
    assert out["is_mean"] == pytest.approx(k, rel=1e-9)


def test_inception_score_matches_the_torch_fidelity_formula():
    """Reference: softmax, per split exp(mean KL(p || mean p)), float64, seeded permutation."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(230, 7, generator=gen) * 3
    out = inception_score(logits, seed=5)
    x = logits.double()[torch.from_numpy(np.random.RandomState(5).permutation(230))]
    p = x.softmax(1).numpy()
    scores = []
    for i in range(10):
        part = p[i * 230 // 10 : (i + 1) * 230 // 10]
        q = part.mean(0, keepdims=True)
        scores.append(math.exp((part * (np.log(part) - np.log(q))).sum(1).mean()))
    assert out["is_mean"] == pytest.approx(np.mean(scores), rel=1e-12)
    assert out["is_std"] == pytest.approx(np.std(scores), rel=1e-9)


# --- precision / recall ---------------------------------------------------------------------------
def test_precision_recall_identical_sets_are_one():
    x = np.random.default_rng(0).standard_normal((100, 8))
    out = precision_recall(x, x.copy())
    assert (out["precision"], out["recall"]) == (1.0, 1.0)


def test_precision_recall_far_apart_sets_are_zero():
    rng = np.random.default_rng(1)
    out = precision_recall(rng.standard_normal((80, 8)), rng.standard_normal((90, 8)) + 100)
    assert (out["precision"], out["recall"]) == (0.0, 0.0)


def test_precision_recall_against_brute_force_and_block_sizes():
    rng = np.random.default_rng(2)
    real = rng.standard_normal((70, 3))
    fake = rng.standard_normal((50, 3)) * 0.6 + 1.0
    dist = lambda a, b: np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))  # noqa: E731
    r_real = np.sort(dist(real, real), 1)[:, 3]  # k = 3, index 0 is the point itself
    r_fake = np.sort(dist(fake, fake), 1)[:, 3]
    precision = (dist(fake, real) <= r_real[None]).any(1).mean()
    recall = (dist(real, fake) <= r_fake[None]).any(1).mean()
    np.testing.assert_allclose(knn_radii(torch.from_numpy(real)).numpy(), r_real, rtol=1e-9)
    for block in (1, 7, 1000):
        out = precision_recall(real, fake, block=block)
        assert out["precision"] == pytest.approx(precision)
        assert out["recall"] == pytest.approx(recall)
    assert 0 < precision < 1 and 0 < recall < 1
