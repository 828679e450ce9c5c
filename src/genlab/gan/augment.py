"""Differentiable Augmentation (Zhao et al. 2020, "Differentiable Augmentation for
Data-Efficient GAN Training"), following the authors' DiffAugment_pytorch.py.

With few training images the discriminator memorises them and the generator stops learning.
DiffAugment applies the *same kind* of random, differentiable transform to every image the
discriminator sees, real and fake, in both the D and the G steps, so D cannot memorise the real
set and G still gets gradients through the transform. Our offline sets are small (mnist-5k's
4000 digits, lfw's 200 faces), which is the case it was made for.

Policies (comma-separated), on images in the model's [-1, 1] space:
    color        brightness + U(-0.5, 0.5); saturation x (0..2); contrast x (0.5..1.5)
    translation  integer shift of up to 1/8 of the size, zero padded
    cutout       a zeroed square of half the size at a random place
All randomness comes from the global RNG, so it is part of the loop's resumable RNG state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

POLICIES = ("color", "translation", "cutout")


def check_policy(policy: str) -> str:
    for name in filter(None, (p.strip() for p in policy.split(","))):
        if name not in POLICIES:
            raise ValueError(f"unknown augmentation {name!r}; choose among {', '.join(POLICIES)}")
    return policy


def _rand(x: Tensor) -> Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device)


def color(x: Tensor) -> Tensor:
    x = x + (_rand(x) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x) + 0.5) + mean  # contrast


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    gb, gy, gx = torch.meshgrid(
        torch.arange(b, device=x.device),
        torch.arange(h, device=x.device),
        torch.arange(w, device=x.device),
        indexing="ij",
    )
    gy = torch.clamp(gy + ty + 1, 0, h + 1)  # +1: index into the 1-pixel zero padding
    gx = torch.clamp(gx + tx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # (B, H+2, W+2, C)
    return padded[gb, gy, gx].permute(0, 3, 1, 2).contiguous()


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    gb, gy, gx = torch.meshgrid(
        torch.arange(b, device=x.device),
        torch.arange(ch, device=x.device),
        torch.arange(cw, device=x.device),
        indexing="ij",
    )
    gy = torch.clamp(gy + oy - ch // 2, 0, h - 1)
    gx = torch.clamp(gx + ox - cw // 2, 0, w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gy, gx] = 0
    return x * mask.unsqueeze(1)


_FUNCTIONS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: Tensor, policy: str) -> Tensor:
    """Apply each transform of `policy` (in the order given) to x (B, C, H, W)."""
    for name in filter(None, (p.strip() for p in policy.split(","))):
        x = _FUNCTIONS[name](x)
    return x
