"""The receptive-field figure: which input values can change one output value's logits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor


def receptive_field(
    model: Any, x: Tensor, row: int, col: int, labels: Tensor | None = None
) -> Tensor:
    """|d logits(row, col, channel 0) / d x| summed over input channels: (H, W); `labels`
    (one, for class-conditional models)."""
    x = x[:1].clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model.logits(x, None if labels is None else labels[:1])
        out = logits[:, 0, row, col] if model.config.binarize else logits[:, :, 0, row, col]
        out.sum().backward()
    return x.grad[0].abs().sum(0).detach().cpu()


def receptive_field_figure(model: Any, x: Tensor, path: Path, labels: Tensor | None = None) -> Path:
    """The gradient of the centre pixel's logits with respect to the input image: every input
    value with a non-zero gradient is in the receptive field (coloured by magnitude, log scale);
    the red square is the output pixel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    h, w = model.config.data_shape[1:]
    row, col = h // 2, w // 2
    grad = receptive_field(model, x, row, col, labels).numpy()
    shown = np.where(grad > 0, np.log10(grad + 1e-30), np.nan)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    ax.imshow(np.zeros_like(grad), cmap="gray", vmin=-1, vmax=1)
    im = ax.imshow(shown, cmap="viridis")
    ax.add_patch(plt.Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, color="red", lw=2))
    ax.set_title(f"{type(model).__name__}: inputs that reach pixel ({row}, {col})")
    fig.colorbar(im, ax=ax, fraction=0.046, label="log10 |gradient|")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
