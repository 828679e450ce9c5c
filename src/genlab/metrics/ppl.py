"""Perceptual Path Length (Karras et al. 2019, StyleGAN), with the StyleGAN protocol.

How much the image changes, perceptually, along a small step in latent space:

    PPL = E[ d(G(lerp_or_slerp(z0, z1, t)), G(lerp_or_slerp(z0, z1, t + eps))) / eps^2 ]

- eps = 1e-4; `d` is LPIPS (VGG16) on *float* images (rounding to 8 bits would erase an
  eps-sized change), images larger than 256 are average-pooled to at most 256 first;
- space "z": spherical interpolation (slerp) of the latents; space "w": linear interpolation of
  the mapped latents w = mapping(z) (StyleGAN's intermediate space);
- sampling "full": t ~ U(0, 1); "end": t = 0 (path endpoints only);
- the distances outside the [1st, 99th] percentile range (numpy's "lower"/"higher" percentile
  methods) are discarded before the mean; this filter is part of the metric.

StyleGAN's slerp returns unit vectors, which is harmless for its mapping network (it normalises
its input); for generators that do not, we give the slerped direction the linearly interpolated
norm of the endpoints. With unit-norm latents this is exactly StyleGAN's slerp.

Models opt in through `LatentGenerator` (z space) and `StyleGenerator` (w space) below; the
metric itself takes plain callables, so any generator can be measured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlab.contract import LatentGenerator, StyleGenerator
from genlab.errors import GenlabError
from genlab.metrics.imageops import area_downsample


def _normalize(x: Tensor) -> Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of directions (StyleGAN's), with norms interpolated linearly.

    a, b (B, D); t (B,) or (B, 1). For unit-norm a, b this is StyleGAN's `slerp`.
    """
    t = t.reshape(-1, 1)
    norm = (1 - t) * a.norm(dim=-1, keepdim=True) + t * b.norm(dim=-1, keepdim=True)
    a, b = _normalize(a), _normalize(b)
    d = (a * b).sum(-1, keepdim=True)
    p = t * torch.acos(d.clamp(-1, 1))  # the angle travelled
    c = _normalize(b - d * a)  # unit vector orthogonal to a in the a-b plane
    return _normalize(a * torch.cos(p) + c * torch.sin(p)) * norm


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    t = t.reshape(-1, 1)
    return a + (b - a) * t


def percentile_filter(distances: np.ndarray, lower: float = 1, upper: float = 99) -> np.ndarray:
    """Keep lo <= d <= hi, lo/hi the numpy percentiles with methods 'lower'/'higher'."""
    lo = np.percentile(distances, lower, method="lower")
    hi = np.percentile(distances, upper, method="higher")
    return distances[(distances >= lo) & (distances <= hi)]


def path_lengths(
    synthesize: Callable[[Tensor], Tensor],
    sample_latent: Callable[..., Tensor],
    distance: Callable[[Tensor, Tensor], Tensor],
    *,
    n: int,
    epsilon: float = 1e-4,
    space: str = "z",
    sampling: str = "full",
    mapping: Callable[[Tensor], Tensor] | None = None,
    batch_size: int = 64,
    seed: int = 0,
    max_size: int = 256,
) -> np.ndarray:
    """The n per-pair values d(...)/eps^2 (before the percentile filter)."""
    if space not in ("z", "w"):
        raise GenlabError(f"PPL space must be 'z' or 'w', got {space!r}")
    if sampling not in ("full", "end"):
        raise GenlabError(f"PPL sampling must be 'full' or 'end', got {sampling!r}")
    if space == "w" and mapping is None:
        raise GenlabError("PPL in w space needs a model with a mapping network (mapping/synthesis)")
    # All latents and t are drawn first (as torch-fidelity does), so the batch size changes only
    # how the work is sliced, never which pairs are measured.
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        z0 = sample_latent(n, generator=generator)  # (n, D)
        z1 = sample_latent(n, generator=generator)
    t = torch.rand(n, generator=generator, dtype=torch.float64)
    if sampling == "end":
        t = torch.zeros_like(t)
    values = []
    for start in range(0, n, batch_size):
        a, b = z0[start : start + batch_size], z1[start : start + batch_size]
        t0 = t[start : start + batch_size].to(device=a.device, dtype=a.dtype)
        with torch.no_grad():
            if space == "w":
                assert mapping is not None
                a, b = mapping(a), mapping(b)
                ends = (lerp(a, b, t0), lerp(a, b, t0 + epsilon))
            else:
                ends = (slerp(a, b, t0), slerp(a, b, t0 + epsilon))
            # one call per end, so row i of both calls is the same example: a generator that
            # ties per-row inputs to the row (a conditional GAN's cycling labels) stays consistent
            first, second = (area_downsample(synthesize(e), max_size) for e in ends)
            d = distance(first, second)  # (B,)
        values.append((d.double() / epsilon**2).cpu().numpy())
    return np.concatenate(values)


def perceptual_path_length(
    synthesize: Callable[[Tensor], Tensor],
    sample_latent: Callable[..., Tensor],
    distance: Callable[[Tensor, Tensor], Tensor],
    *,
    n: int = 10_000,
    epsilon: float = 1e-4,
    space: str = "z",
    sampling: str = "full",
    mapping: Callable[[Tensor], Tensor] | None = None,
    batch_size: int = 64,
    seed: int = 0,
    max_size: int = 256,
) -> dict[str, Any]:
    """PPL: the mean of the per-pair path lengths inside the [1, 99] percentile range."""
    values = path_lengths(
        synthesize,
        sample_latent,
        distance,
        n=n,
        epsilon=epsilon,
        space=space,
        sampling=sampling,
        mapping=mapping,
        batch_size=batch_size,
        seed=seed,
        max_size=max_size,
    )
    kept = percentile_filter(values)
    return {
        "ppl": float(kept.mean()),
        "ppl_n": int(n),
        "ppl_kept": len(kept),
        "ppl_protocol": {
            "epsilon": epsilon,
            "space": space,
            "interpolation": "lerp" if space == "w" else "slerp",
            "sampling": sampling,
            "percentile_filter": [1, 99],
            "images": f"float, area-downsampled to at most {max_size}",
        },
    }


def model_ppl_callables(model: Any, space: str) -> dict[str, Any]:
    """synthesize / sample_latent / mapping of a model that opts in through the protocols."""
    if not isinstance(model, LatentGenerator):
        raise GenlabError(
            f"PPL needs a latent-space generator; {type(model).__name__} has no "
            "sample_latent(n, generator=...) and generate(z)"
        )
    if space == "w":
        if not isinstance(model, StyleGenerator):
            raise GenlabError(f"{type(model).__name__} has no mapping/synthesis (w space)")
        return {
            "synthesize": model.synthesis,
            "sample_latent": model.sample_latent,
            "mapping": model.mapping,
        }
    return {"synthesize": model.generate, "sample_latent": model.sample_latent, "mapping": None}
