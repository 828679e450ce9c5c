"""Frechet Inception Distance (Heusel et al. 2017), computed as the reference tools do.

Fit a Gaussian to the features of each set and take the Frechet (2-Wasserstein) distance:

    FID = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1 S2 (real and >= 0 in
exact arithmetic, since S1 S2 is similar to the PSD matrix S1^(1/2) S2 S1^(1/2)); taking them
through a complex square root and keeping the real part (torch-fidelity's formula) is stable for
rank-deficient covariances, where the Newton/Schur `sqrtm` of the TTUR and pytorch-fid code needs
an epsilon retry, and avoids scipy's `sqrtm(disp=...)`, removed in SciPy 1.18.
Everything is float64. Covariances are unbiased (N - 1), as numpy's `np.cov`.

Pitfalls (see docs/metrics.md): FID is biased upwards for small N (compare only equal N), and with
N < D (2048 for Inception) the covariance is singular; we warn. Statistics are streamed
(`RunningStatistics`), so 50k images need memory for one batch plus two D x D matrices.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlab.errors import GenlabError


class MetricWarning(UserWarning):
    """A metric was computed but its number is unreliable (e.g. too few samples)."""


def _as_float64(x: Any) -> Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x).to(torch.float64)


def feature_statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), float64."""
    stats = RunningStatistics()
    stats.update(_as_float64(features))
    return stats.mean(), stats.covariance()


class RunningStatistics:
    """Streaming mean and covariance in float64.

    Sums are taken around a shift (the first batch's mean) so that large common offsets do not
    cancel catastrophically: cov = (sum (x-s)(x-s)^T - n (mu-s)(mu-s)^T) / (n - 1).
    """

    def __init__(self) -> None:
        self.n = 0
        self.shift: Tensor | None = None
        self.sum: Tensor | None = None
        self.outer: Tensor | None = None

    def update(self, batch: Tensor) -> None:
        x = _as_float64(batch)
        if x.dim() != 2:
            raise ValueError(f"expected features (N, D), got {tuple(x.shape)}")
        if x.shape[0] == 0:
            return
        if self.shift is None:
            self.shift = x.mean(0)
            self.sum = torch.zeros_like(self.shift)
            self.outer = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)
        assert self.sum is not None and self.outer is not None
        centred = x - self.shift
        self.sum += centred.sum(0)
        self.outer += centred.T @ centred
        self.n += x.shape[0]

    def mean(self) -> np.ndarray:
        if self.shift is None or self.sum is None:
            raise GenlabError("no features were seen")
        return (self.shift + self.sum / self.n).numpy()

    def covariance(self) -> np.ndarray:
        if self.sum is None or self.outer is None or self.n < 2:
            raise GenlabError(f"a covariance needs at least 2 samples, got {self.n}")
        m = self.sum / self.n
        return ((self.outer - self.n * torch.outer(m, m)) / (self.n - 1)).numpy()


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the enclosed torch ops on one thread, then restore the setting.

    LAPACK's nonsymmetric eigensolver (Hessenberg QR) gains little from threads, and when another
    process holds a core its OpenMP threads spin-wait: on the 2-core machine of
    docs/metrics.md, eigvals of a 2048 x 2048 matrix took 4.8 s on one thread and 146 s on two.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def trace_sqrt_product(sigma1: Any, sigma2: Any) -> float:
    """tr((S1 S2)^(1/2)) as the sum of sqrt(eigenvalues of S1 S2) (real part), float64."""
    s1, s2 = _as_float64(sigma1), _as_float64(sigma2)
    product = s1 @ s2
    with one_thread():
        eigenvalues = torch.linalg.eigvals(product)  # complex128
    # round-off leaves tiny negative or complex eigenvalues; their sqrt has real part ~0
    return float(torch.sqrt(eigenvalues).real.sum())


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """The Frechet distance between N(mu1, S1) and N(mu2, S2)."""
    m1, m2 = _as_float64(mu1), _as_float64(mu2)
    s1, s2 = _as_float64(sigma1), _as_float64(sigma2)
    if m1.shape != m2.shape or s1.shape != s2.shape or s1.shape != (m1.numel(), m1.numel()):
        raise GenlabError(
            f"statistics do not match: mu {tuple(m1.shape)} vs {tuple(m2.shape)}, "
            f"sigma {tuple(s1.shape)} vs {tuple(s2.shape)}"
        )
    diff = m1 - m2
    fid = float(diff @ diff) + float(s1.trace() + s2.trace()) - 2 * trace_sqrt_product(s1, s2)
    if not np.isfinite(fid):
        raise GenlabError("FID is not finite: the features contain NaN or infinity")
    return fid


def warn_if_few(n: int, dim: int, what: str = "features") -> str | None:
    """Warn (and return the message) when n < dim: the covariance is singular."""
    if n < dim:
        message = (
            f"{n} samples < {dim} feature dimensions: the covariance of the {what} is singular "
            "and FID is biased upwards; compare only numbers computed with the same N"
        )
        warnings.warn(message, MetricWarning, stacklevel=3)
        return message
    return None


def fid_from_features(
    features1: Any, features2: Any, *, names: tuple[str, str] = ("features", "features")
) -> dict[str, Any]:
    """FID of two feature sets; "warnings" lists each set with fewer rows than dimensions."""
    f1, f2 = _as_float64(features1), _as_float64(features2)
    notes = [
        m
        for m in (
            warn_if_few(len(f1), f1.shape[1], names[0]),
            warn_if_few(len(f2), f2.shape[1], names[1]),
        )
        if m
    ]
    mu1, s1 = feature_statistics(f1)
    mu2, s2 = feature_statistics(f2)
    out: dict[str, Any] = {"fid": frechet_distance(mu1, s1, mu2, s2), "n1": len(f1), "n2": len(f2)}
    out["warnings"] = notes
    if notes:
        out["warning"] = notes[0]
    return out


# --- statistics files (pytorch-fid's .npz: arrays "mu" and "sigma") ---------------------------
def save_statistics(path: str | Path, mu: np.ndarray, sigma: np.ndarray, **extra: Any) -> Path:
    """Write mu, sigma (and extra arrays or strings) to an .npz, atomically."""
    from genlab.fileio import atomic_write

    path = Path(path)
    arrays = {"mu": np.asarray(mu, np.float64), "sigma": np.asarray(sigma, np.float64)}
    arrays.update({k: np.asarray(v) for k, v in extra.items()})

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(path, write)
    except OSError as e:
        raise GenlabError(f"cannot write statistics to {path} ({e.strerror})") from None


def load_statistics(path: str | Path) -> dict[str, Any]:
    """mu, sigma (and whatever else was saved) from an .npz; never unpickles objects."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as e:
        raise GenlabError(f"cannot read statistics {path}: {str(e).splitlines()[0]}") from None
    if "mu" not in out or "sigma" not in out:
        raise GenlabError(f"{path} has no 'mu' and 'sigma' arrays (pytorch-fid's format)")
    return out
