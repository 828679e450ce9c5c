"""Figures for flows: samples at several temperatures, 2-D densities, a pushed-forward grid.

Called through `Flow.visualize` (so `genlab evaluate RUN` writes them into RUN/figures/).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

TEMPERATURES = (0.5, 0.7, 0.85, 1.0)


def temperature_figure(flow: Any, out_dir: Path, generator: torch.Generator) -> list[Path]:
    """samples.png (64 at T = 1) and temperatures.png: one row per temperature, the same noise
    eps in every row (x = decode(T eps)), so a column shows one sample cooling down."""
    from genlab.imaging import save_image

    device = next(flow.parameters()).device
    d = math.prod(flow.config.data_shape)
    samples = flow.sample(64, generator=generator)
    eps = torch.randn(10, d, generator=generator, device=device)
    rows = [flow.decode(t * eps) for t in TEMPERATURES]
    return [
        save_image(samples, out_dir / "samples.png", nrow=8, scale=2),
        save_image(torch.cat(rows), out_dir / "temperatures.png", nrow=10, scale=2),
    ]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _limits(x: Tensor, margin: float = 0.15) -> tuple[float, float, float, float]:
    lo, hi = x.min(0).values, x.max(0).values
    pad = (hi - lo) * margin
    return (
        float(lo[0] - pad[0]),
        float(hi[0] + pad[0]),
        float(lo[1] - pad[1]),
        float(hi[1] + pad[1]),
    )


def density_figure(flow: Any, x: Tensor, path: Path, generator: torch.Generator) -> Path:
    """Three panels: the data, the learned density p(x) on a 200x200 grid, samples."""
    plt = _plt()
    x0, x1, y0, y1 = _limits(x.cpu())
    gx = torch.linspace(x0, x1, 200)
    gy = torch.linspace(y0, y1, 200)
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), -1).view(-1, 2)
    device = x.device
    log_p = torch.cat([flow.log_prob(chunk.to(device)) for chunk in grid.split(10000)])
    density = log_p.exp().view(200, 200).cpu().numpy()
    samples = flow.sample(len(x), generator=generator).cpu().numpy()
    x = x.cpu().numpy()
    fig, axes = plt.subplots(1, 3, figsize=(12, 4), dpi=100)
    axes[0].scatter(x[:, 0], x[:, 1], s=2, alpha=0.5)
    axes[0].set_title("data")
    axes[1].imshow(density, origin="lower", extent=(x0, x1, y0, y1), cmap="viridis", aspect="auto")
    axes[1].set_title("learned density p(x)")
    axes[2].scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.5, color="tab:orange")
    axes[2].set_title("samples")
    for ax in axes:
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
    return _save(fig, path, plt)


def grid_figure(flow: Any, x: Tensor, path: Path, lines: int = 15) -> Path:
    """Data space with a regular grid (left) and both pushed through f into z space (right)."""
    plt = _plt()
    x0, x1, y0, y1 = _limits(x.cpu())
    t = torch.linspace(0, 1, 200)
    device = x.device
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5), dpi=100)
    colors = plt.get_cmap("coolwarm")
    for v in torch.linspace(0, 1, lines):
        color = colors(float(v))
        for curve in (
            torch.stack([x0 + (x1 - x0) * t, torch.full_like(t, y0 + (y1 - y0) * float(v))], 1),
            torch.stack([torch.full_like(t, x0 + (x1 - x0) * float(v)), y0 + (y1 - y0) * t], 1),
        ):
            z = flow.encode(curve.to(device)).cpu().numpy()
            curve = curve.numpy()
            axes[0].plot(curve[:, 0], curve[:, 1], color=color, lw=0.6)
            axes[1].plot(z[:, 0], z[:, 1], color=color, lw=0.6)
    z = flow.encode(x).cpu().numpy()
    x = x.cpu().numpy()
    axes[0].scatter(x[:, 0], x[:, 1], s=1, color="black", alpha=0.4)
    axes[1].scatter(z[:, 0], z[:, 1], s=1, color="black", alpha=0.4)
    axes[0].set_title("data space x")
    axes[1].set_title("z = f(x): the grid and the data pushed forward")
    axes[1].set_xlim(-4, 4)
    axes[1].set_ylim(-4, 4)
    return _save(fig, path, plt)


def _save(fig: Any, path: Path, plt: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
