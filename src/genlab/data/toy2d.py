"""2-D toy densities, the standard test bed of normalizing flows and small generative models.

The generators follow FFJORD's `lib/toy_data.py` (Grathwohl et al., 2019), which most flow
papers reuse, with two changes: every point is drawn independently (FFJORD places half of the
points on each moon or spiral and uses sklearn's evenly spaced moons; here the component is drawn
per point, so any n is an i.i.d. sample from the density), and all randomness comes from one
seeded numpy Generator.

Each split is its own independent sample (its own seed stream), so the val and test losses
measure generalisation to fresh draws, not memorisation of the training points.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import torch

from genlab.data.base import ArrayDataset, DataSpec
from genlab.data.options import int_option
from genlab.data.splits import SPLITS, one_split
from genlab.errors import GenlabError, close_matches

Sampler = Callable[[np.random.Generator, int], np.ndarray]


def moons(rng: np.random.Generator, n: int) -> np.ndarray:
    """Two interleaved half circles with noise 0.1, scaled and centred as in FFJORD."""
    t = rng.uniform(0.0, np.pi, n)
    lower = rng.integers(0, 2, n).astype(bool)
    x = np.where(lower, 1.0 - np.cos(t), np.cos(t))
    y = np.where(lower, 0.5 - np.sin(t), np.sin(t))
    points = np.stack([x, y], axis=1) + rng.normal(0.0, 0.1, (n, 2))
    return points * 2 + np.array([-1.0, -0.2])


def circles(rng: np.random.Generator, n: int) -> np.ndarray:
    """Two concentric circles (radius 3 and 1.5) with noise 0.08 before scaling."""
    t = rng.uniform(0.0, 2 * np.pi, n)
    radius = np.where(rng.integers(0, 2, n).astype(bool), 0.5, 1.0)
    points = radius[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    return (points + rng.normal(0.0, 0.08, (n, 2))) * 3


def eight_gaussians(rng: np.random.Generator, n: int) -> np.ndarray:
    """A ring of 8 Gaussians (std 0.5) at radius 4, the whole divided by 1.414."""
    angles = np.arange(8) * (np.pi / 4)
    centres = 4 * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (8, 2)
    points = centres[rng.integers(0, 8, n)] + rng.normal(0.0, 0.5, (n, 2))
    return points / 1.414


def checkerboard(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniform on the black squares of a 4x4 checkerboard spanning [-4, 4]^2."""
    x1 = rng.uniform(0.0, 1.0, n) * 4 - 2
    x2 = rng.uniform(0.0, 1.0, n) - rng.integers(0, 2, n) * 2
    x2 = x2 + np.floor(x1) % 2
    return np.stack([x1, x2], axis=1) * 2


def spirals(rng: np.random.Generator, n: int) -> np.ndarray:
    """Two interleaved spirals (FFJORD's '2spirals')."""
    turn = np.sqrt(rng.uniform(0.0, 1.0, n)) * 540 * (2 * np.pi) / 360
    x = -np.cos(turn) * turn + rng.uniform(0.0, 1.0, n) * 0.5
    y = np.sin(turn) * turn + rng.uniform(0.0, 1.0, n) * 0.5
    sign = np.where(rng.integers(0, 2, n).astype(bool), -1.0, 1.0)[:, None]
    return sign * np.stack([x, y], axis=1) / 3 + rng.normal(0.0, 0.1, (n, 2))


def pinwheel(rng: np.random.Generator, n: int) -> np.ndarray:
    """Five curved arms (radial std 0.3, tangential std 0.1, rate 0.25)."""
    arms, radial_std, tangential_std, rate = 5, 0.3, 0.1, 0.25
    arm_angles = np.linspace(0, 2 * np.pi, arms, endpoint=False)
    features = rng.normal(0.0, 1.0, (n, 2)) * np.array([radial_std, tangential_std])
    features[:, 0] += 1.0
    angles = arm_angles[rng.integers(0, arms, n)] + rate * np.exp(features[:, 0])
    cos, sin = np.cos(angles), np.sin(angles)
    rotated = np.stack(
        [features[:, 0] * cos + features[:, 1] * sin, -features[:, 0] * sin + features[:, 1] * cos],
        axis=1,
    )
    return 2 * rotated


DENSITIES: dict[str, Sampler] = {
    "moons": moons,
    "circles": circles,
    "8gaussians": eight_gaussians,
    "checkerboard": checkerboard,
    "spirals": spirals,
    "pinwheel": pinwheel,
}

SPEC = DataSpec(kind="vector", shape=(2,), levels=0)


def sample(name: str, n: int, *, seed: int = 0, split: str = "train") -> np.ndarray:
    """`n` points (n, 2) float32 of density `name`; one independent stream per (seed, split)."""
    if name not in DENSITIES:
        raise GenlabError(
            f"unknown 2-D density {name!r}; known: {', '.join(DENSITIES)}"
            f"{close_matches(name, DENSITIES)}"
        )
    # SeedSequence mixes all three words: each (seed, split, density) gets its own stream
    rng = np.random.default_rng([seed, SPLITS.index(split), zlib.crc32(name.encode())])
    return DENSITIES[name](rng, n).astype(np.float32)


def load_toy2d(name: str, split: str = "train", *, n: int = 10000, seed: int = 0) -> ArrayDataset:
    """`toy2d:NAME`: a sample of a 2-D density as float32 (N, 2), unlabelled.

    Options: n = training points (default 10000); val and test get n // 5 each (2000), all
    three independent samples. seed (default 0) selects the samples.
    """
    one_split(split)
    n = int_option("n", n, minimum=5)
    seed = int_option("seed", seed, minimum=0)
    size = n if split == "train" else n // 5
    x = torch.from_numpy(sample(name, size, seed=seed, split=split))
    return ArrayDataset(x, None, SPEC)
