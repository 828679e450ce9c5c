"""Procedural shapes in the spirit of dSprites (Matthey et al., 2017): offline, any resolution.

Each image holds one filled shape (square, ellipse, triangle or heart, the label) with a random
scale, rotation, position and, in colour mode, hue, on a black background. The generative factors
are known, which makes the set useful for checking what a VAE or GAN learns, and it renders at
any `image_size` in well under a second on a CPU.

The scene parameters are drawn first, in units of the image size, from one seeded generator, and
only then rendered: the same `seed` and `n` give the same scenes at every `image_size`, and the
output is bit-identical between runs (it relies on numpy's seeded `Generator`; numpy does not
promise identical streams across its major versions). Shapes are drawn by testing pixel centres,
without anti-aliasing.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from genlab.data.base import ArrayDataset
from genlab.data.images import image_spec
from genlab.data.options import choice_option, int_option
from genlab.data.splits import one_split

SHAPES = ("square", "ellipse", "triangle", "heart")
_CHUNK = 256  # images rendered at once; bounds memory at large image sizes


def _inside(label: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether points (u, v) of each shape's own frame lie inside it; (B, H, W) bool.

    Every unit shape fits inside the unit disc, so a shape of radius r never leaves a disc of
    radius r around its centre. `label` is (B, 1, 1).
    """
    square = np.maximum(np.abs(u), np.abs(v)) <= 2**-0.5  # corners on the unit circle
    ellipse = u**2 + (v / 0.55) ** 2 <= 1.0
    # equilateral triangle with circumradius 1 (inradius 1/2), apex up (v grows downwards)
    triangle = np.ones_like(square)
    for phi in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3):
        triangle &= u * np.cos(phi) + v * np.sin(phi) <= 0.5
    # heart curve (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, y up, scaled and shifted into the unit disc
    x, y = 1.25 * u, 0.1 - 1.25 * v
    heart = (x**2 + y**2 - 1.0) ** 3 - x**2 * y**3 <= 0.0
    return np.select([label == 0, label == 1, label == 2], [square, ellipse, triangle], heart)


def render_shapes(
    n: int, image_size: int, channels: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """`n` images (n, channels, S, S) uint8 and their shape labels (n,) int64."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(SHAPES), n)
    radius = rng.uniform(0.2, 0.45, n)  # fraction of the image size
    angle = rng.uniform(0.0, 2 * np.pi, n)
    centre = rng.uniform(radius[:, None], 1.0 - radius[:, None], (n, 2))  # (n, 2) as (x, y)
    hue = rng.uniform(0.0, 1.0, n)

    size = image_size
    grid = (np.arange(size) + 0.5) / size  # pixel centres in [0, 1]
    px, py = grid[None, None, :], grid[None, :, None]  # (1, 1, S) and (1, S, 1)
    colour = _hue_to_rgb(hue) if channels == 3 else np.ones((n, 1))  # (n, C) in [0, 1]
    images = np.zeros((n, channels, size, size), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        part = slice(start, start + _CHUNK)
        r = radius[part, None, None]
        cos, sin = np.cos(angle[part])[:, None, None], np.sin(angle[part])[:, None, None]
        dx, dy = px - centre[part, 0, None, None], py - centre[part, 1, None, None]
        u, v = (cos * dx + sin * dy) / r, (-sin * dx + cos * dy) / r  # rotate, then scale
        mask = _inside(labels[part, None, None], u, v)  # (B, S, S)
        fill = np.rint(colour[part] * 255).astype(np.uint8)  # (B, C)
        images[part] = mask[:, None] * fill[:, :, None, None]
    return images, labels.astype(np.int64)


def _hue_to_rgb(hue: np.ndarray) -> np.ndarray:
    """Saturated, bright colours: HSV (hue, 0.8, 1) to RGB, (n, 3) in [0, 1]."""
    k = (hue[:, None] * 6 + np.array([5.0, 3.0, 1.0])) % 6
    return 1.0 - 0.8 * np.clip(np.minimum(k, 4 - k), 0, 1)


@lru_cache(maxsize=4)
def _shapes(n: int, image_size: int, channels: int, seed: int) -> tuple[Tensor, Tensor]:
    x, y = render_shapes(n, image_size, channels, seed)
    return torch.from_numpy(x), torch.from_numpy(y)


def load_shapes(
    split: str = "train", *, image_size: int = 32, n: int = 6000, channels: int = 1, seed: int = 0
) -> ArrayDataset:
    """dSprites-style shapes, labelled by shape (square, ellipse, triangle, heart).

    Options: image_size (default 32), n (total images, default 6000), channels (1 = white on
    black, 3 = coloured), seed. Splits: the first 80% of the n images are train, the next 10%
    val, the last 10% test (4800 / 600 / 600 by default).
    """
    one_split(split)
    image_size = int_option("image_size", image_size, minimum=4, maximum=1024)
    n = int_option("n", n, minimum=10)
    channels = choice_option("channels", channels, (1, 3))
    seed = int_option("seed", seed, minimum=0)
    x, y = _shapes(n, image_size, channels, seed)
    n_train, n_val = int(0.8 * n), int(0.1 * n)
    bounds = {
        "train": (0, n_train),
        "val": (n_train, n_train + n_val),
        "test": (n_train + n_val, n),
    }
    lo, hi = bounds[split]
    return ArrayDataset(x[lo:hi], y[lo:hi], image_spec((channels, image_size, image_size), SHAPES))
