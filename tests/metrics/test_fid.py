"""FID: closed forms, the eigenvalue trace against scipy's sqrtm, streaming statistics, files."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from genlab.errors import GenlabError
from genlab.metrics.fid import (
    MetricWarning,
    RunningStatistics,
    feature_statistics,
    fid_from_features,
    frechet_distance,
    load_statistics,
    save_statistics,
    trace_sqrt_product,
)


def random_spd(d: int, rng: np.random.Generator, rank: int | None = None) -> np.ndarray:
    a = rng.standard_normal((d, rank or d))
    return a @ a.T / d + (0 if rank else 0.1 * np.eye(d))


def test_equal_covariances_give_squared_mean_distance():
    rng = np.random.default_rng(0)
    sigma = random_spd(16, rng)
    mu1, mu2 = rng.standard_normal(16), rng.standard_normal(16)
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(
        float(((mu1 - mu2) ** 2).sum()), rel=1e-9, abs=1e-9
    )


def test_diagonal_covariances_closed_form():
    """Diagonal S1, S2: FID = |mu1-mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2."""
    rng = np.random.default_rng(1)
    s1, s2 = rng.uniform(0.1, 3, 32), rng.uniform(0.1, 3, 32)
    mu1, mu2 = rng.standard_normal(32), rng.standard_normal(32)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    # float64 throughout, eigenvalues of a well-conditioned 32 x 32 product: ~D eps64 = 7e-15
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(
        expected, rel=1e-10
    )


@pytest.mark.parametrize("seed", range(5))
def test_eigenvalue_trace_matches_scipy_sqrtm(seed):
    rng = np.random.default_rng(seed)
    d = 24
    s1, s2 = random_spd(d, rng), random_spd(d, rng)
    reference = np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
    # two float64 algorithms (eigenvalues vs Schur sqrtm) on a product with condition number
    # < 1e3 (S = A A^T / d + 0.1 I): each within ~cond * D * eps64 = 5e-12 of the truth
    assert trace_sqrt_product(s1, s2) == pytest.approx(reference, rel=1e-9)
    # and the full FID against the TTUR formula with scipy's sqrtm
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    ttur = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * reference
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ttur, rel=1e-9)


def test_rank_deficient_covariances_give_no_nan():
    rng = np.random.default_rng(2)
    s1 = random_spd(64, rng, rank=5)  # rank 5 of 64
    s2 = random_spd(64, rng, rank=3)
    fid = frechet_distance(np.zeros(64), s1, np.ones(64), s2)
    assert np.isfinite(fid) and fid > 0
    # Identical singular covariances: only the mean term (0) is left, up to the 64 - 5 zero
    # eigenvalues of S S, which a float64 eigensolver returns as +-(D eps64) |S|^2 at most:
    # their square roots add up to 2 (D - 5) sqrt(D eps64) |S| (measured: a fiftieth of that).
    bound = 2 * (64 - 5) * np.sqrt(64 * np.finfo(np.float64).eps) * np.linalg.norm(s1, 2)
    assert frechet_distance(np.zeros(64), s1, np.zeros(64), s1) == pytest.approx(0, abs=bound)


def test_identical_features_give_zero_and_few_samples_warn():
    rng = np.random.default_rng(3)
    features = rng.standard_normal((40, 8))
    # full rank, condition number ~10: 2 tr S - 2 sum sqrt(eig(S S)) = 0 to ~D eps64 |S|
    assert fid_from_features(features, features)["fid"] == pytest.approx(0, abs=1e-9)
    with pytest.warns(MetricWarning, match="singular"):
        out = fid_from_features(features[:5], features)
    assert "warning" in out


def test_gaussian_samples_approach_the_closed_form():
    """Features drawn from N(0, I) and N(1, 4I) in d=4: FID -> 4*1 + 4*(2-1)^2 = 8."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 4, generator=gen, dtype=torch.float64)
    b = 1 + 2 * torch.randn(20000, 4, generator=gen, dtype=torch.float64)
    # seeded draws, so the number is fixed; 3% is ~3 standard deviations of the estimator at
    # N = 20000 (its mean term alone: 2 |mu1 - mu2| sqrt((1 + 4) / N) = 0.06)
    assert fid_from_features(a, b)["fid"] == pytest.approx(8.0, rel=0.03)


def test_running_statistics_are_batch_size_independent():
    rng = np.random.default_rng(4)
    features = rng.standard_normal((301, 12)) * 3 + 100  # a large offset: no cancellation
    mu, sigma = np.mean(features, 0), np.cov(features, rowvar=False)
    # float64 sums of 301 rows in another order and around another shift: ~N eps64 = 7e-14 of
    # the scale, far inside 1e-12 (mean) and 1e-9 (covariance, entries ~9 around 0)
    for batch in (1, 7, 64, 301):
        stats = RunningStatistics()
        for start in range(0, len(features), batch):
            stats.update(torch.from_numpy(features[start : start + batch]))
        np.testing.assert_allclose(stats.mean(), mu, rtol=1e-12)
        np.testing.assert_allclose(stats.covariance(), sigma, rtol=1e-9, atol=1e-10)
    got_mu, got_sigma = feature_statistics(features)
    np.testing.assert_allclose(got_mu, mu, rtol=1e-12)
    np.testing.assert_allclose(got_sigma, sigma, rtol=1e-9, atol=1e-10)


def test_statistics_file_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(5)
    mu, sigma = rng.standard_normal(6), random_spd(6, rng)
    path = save_statistics(tmp_path / "s.npz", mu, sigma, n=10, extractor="x")
    loaded = load_statistics(path)
    np.testing.assert_array_equal(loaded["mu"], mu)
    np.testing.assert_array_equal(loaded["sigma"], sigma)
    assert int(loaded["n"]) == 10
    np.savez(tmp_path / "bad.npz", mean=mu)
    with pytest.raises(GenlabError, match="mu"):
        load_statistics(tmp_path / "bad.npz")
    with pytest.raises(GenlabError, match="cannot read"):
        load_statistics(tmp_path / "missing.npz")
    with pytest.raises(GenlabError, match="do not match"):
        frechet_distance(mu, sigma, mu[:3], sigma[:3, :3])
