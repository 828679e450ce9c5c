"""The few image operations genlab needs (no torchvision here): grids, PNG files and GIFs.

Writing a model's samples of any kind (images, points, text) is genlab.writers' job."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch import Tensor


def make_grid(images: Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0):
    """(B, C, H, W) floats in [0, 1] -> one (C, H', W') image with `nrow` images per row."""
    if images.dim() != 4:
        raise ValueError(f"expected (B, C, H, W) images, got shape {tuple(images.shape)}")
    b, c, h, w = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(b)))
    rows = math.ceil(b / nrow)
    grid = torch.full(
        (c, rows * (h + padding) + padding, nrow * (w + padding) + padding), float(pad_value)
    )
    for i in range(b):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = images[i].detach().float().cpu()
    return grid


def to_uint8(image: Tensor) -> Tensor:
    """(..., C, H, W) floats in [0, 1] -> (..., H, W, C) uint8, rounding to the nearest level
    (one image or a whole batch)."""
    return (image.clamp(0, 1) * 255).round().to(torch.uint8).movedim(-3, -1)


def to_pil(array):
    """An (H, W, C) uint8 array with 1 or 3 channels as a PIL image (L or RGB)."""
    from PIL import Image

    if array.shape[2] == 1:
        return Image.fromarray(array[:, :, 0], mode="L")
    return Image.fromarray(array, mode="RGB")


def save_image(image: Tensor, path: str | Path, *, nrow: int | None = None, scale: int = 1) -> Path:
    """Write a (C, H, W) image or a (B, C, H, W) batch (as a grid, `nrow` per row) to PNG."""
    from PIL import Image

    if image.dim() == 4:
        image = make_grid(image, nrow=nrow)
    picture = to_pil(to_uint8(image).numpy())
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    return _save_atomically(picture, path, format="PNG")


def _save_atomically(picture, path: str | Path, **save_options) -> Path:
    """PIL's save to a temporary name, then a rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    picture.save(tmp, **save_options)
    os.replace(tmp, path)
    return path


def save_gif(
    frames: list[Tensor], path: str | Path, *, duration_ms: int = 80, scale: int = 2
) -> Path:
    """Write a looping GIF; each frame is a (B, C, H, W) batch (shown as one row) or (C, H, W)."""
    from PIL import Image

    pictures = []
    for frame in frames:
        if frame.dim() == 4:
            frame = make_grid(frame, nrow=frame.shape[0])
        array = to_uint8(frame.float().cpu()).numpy()
        picture = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
        if scale > 1:
            picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
        pictures.append(picture)
    return _save_atomically(
        pictures[0],
        path,
        format="GIF",
        save_all=True,
        append_images=pictures[1:],
        duration=duration_ms,
        loop=0,
    )
