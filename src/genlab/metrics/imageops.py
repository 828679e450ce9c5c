"""Image preprocessing of the reference protocols (torch-fidelity / TTUR), without torchvision.

The published FID and IS numbers come from TensorFlow 1 graphs that
1. received 8-bit images (generator output rounded to uint8),
2. resized them to 299x299 with TF1's `resize_bilinear(align_corners=False)`, whose sampling grid
   is src = dst * in/out (no half-pixel offset, unlike torch's `F.interpolate`), and
3. scaled them to [-1, 1] as (x - 128) / 128.
torch-fidelity reproduces this exactly (`interpolate_compat_tensorflow.py`); so do we, since a
different resize alone moves FID by several points.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def quantize_uint8(images: Tensor) -> Tensor:
    """Floats in [0, 1] -> the nearest 8-bit level, as floats in [0, 255]."""
    return (images.clamp(0.0, 1.0) * 255.0).round()


def to_rgb(images: Tensor) -> Tensor:
    """(B, 1, H, W) -> (B, 3, H, W) by repeating the grey channel; RGB passes through."""
    if images.shape[1] == 1:
        return images.expand(-1, 3, -1, -1)
    if images.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {images.shape[1]}")
    return images


def to_grey(images: Tensor) -> Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) as the channel mean (exact for repeated grey)."""
    if images.shape[1] == 1:
        return images
    if images.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {images.shape[1]}")
    return images.mean(1, keepdim=True)


def _tf1_grid(in_size: int, out_size: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Source indices (lo, hi) and weights of TF1 bilinear resizing with align_corners=False."""
    scale = in_size / out_size
    # TF computes the source coordinate in float32: dst * scale.
    src = torch.arange(out_size, dtype=torch.float32, device=device) * torch.tensor(
        scale, dtype=torch.float32
    )
    lo = src.floor().long()
    hi = (lo + 1).clamp(max=in_size - 1)
    return lo, hi, src - lo.float()


def resize_bilinear_tf1(images: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, C, H, W) floats -> (B, C, *size), bit-compatible with TF1 `resize_bilinear`.

    top = tl + (tr - tl) * dx; bottom = bl + (br - bl) * dx; out = top + (bottom - top) * dy,
    the same order of operations as TensorFlow's kernel (and torch-fidelity's port).
    """
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError("expected floating (B, C, H, W) images")
    out_h, out_w = size
    h, w = images.shape[-2:]
    if (h, w) == (out_h, out_w):
        return images
    y_lo, y_hi, dy = _tf1_grid(h, out_h, images.device)
    x_lo, x_hi, dx = _tf1_grid(w, out_w, images.device)
    dx = dx.to(images.dtype).view(1, 1, 1, out_w)
    dy = dy.to(images.dtype).view(1, 1, out_h, 1)
    rows_lo = images.index_select(2, y_lo)  # (B, C, out_h, W)
    rows_hi = images.index_select(2, y_hi)
    tl, tr = rows_lo.index_select(3, x_lo), rows_lo.index_select(3, x_hi)
    bl, br = rows_hi.index_select(3, x_lo), rows_hi.index_select(3, x_hi)
    top = tl + (tr - tl) * dx
    bottom = bl + (br - bl) * dx
    return top + (bottom - top) * dy


def area_downsample(images: Tensor, max_size: int) -> Tensor:
    """Average-pool by an integer factor so the side is at most `max_size` (StyleGAN's PPL)."""
    h, w = images.shape[-2:]
    if h <= max_size and w <= max_size:
        return images
    factor = -(-max(h, w) // max_size)  # ceil
    return F.avg_pool2d(images, factor)  # = reshape(.., h/f, f, w/f, f).mean when f divides h
