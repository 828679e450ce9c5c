"""Invertible layers shared by RealNVP and Glow, for vectors (B, D) and images (B, C, H, W).

Every layer maps x -> (y, log|det dy/dx|) in `forward` and y -> x in `inverse`; a flow is a
stack of them, and the change of variables gives an exact log-likelihood:

    log p(x) = log p_Z(f(x)) + sum_layers log|det J_layer|

Layers (the papers' names):
- `ActNorm` (Glow, Sec. 3.1): y = (x + b) * exp(logs) per channel; b and logs are initialised
  from the first batch so that y has zero mean and unit variance per channel (data-dependent
  init), then trained. log|det| = H W sum(logs).
- `InvConv1x1` (Glow, Sec. 3.2): a learned channel mixing W = P L (U + diag(s)) with P a fixed
  permutation, L unit lower triangular, U strictly upper triangular (the LU parametrization),
  so log|det| = H W sum(log|s|) costs O(C) instead of O(C^3).
- `AffineCoupling` (RealNVP, Sec. 3.3): with a binary mask m, y = m x + (1 - m)(x exp(log_s) +
  t), where (log_s, t) = NN(m x); log|det| = sum((1 - m) log_s). The scale is soft-clamped,
  log_s = c tanh(raw / c), so exp(log_s) stays in [e^-c, e^c]: the main guard against the
  NaN/inf losses flows are known for. Masks: checkerboard or channel halves for images,
  alternating halves for vectors.
- `Squeeze` (RealNVP, Sec. 3.6): (B, C, H, W) -> (B, 4C, H/2, W/2), a permutation (log|det| 0).

Coupling networks: `ResNet` (images) and `MLP` (vectors), whose last layer starts at zero so
that every coupling starts as the identity.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _sum_per_example(x: Tensor) -> Tensor:
    return x.flatten(1).sum(1)


def _spatial(x: Tensor) -> int:
    """H W for images, 1 for vectors: how many times a per-channel log-det counts."""
    return x.shape[2] * x.shape[3] if x.dim() == 4 else 1


def _per_channel(v: Tensor, x: Tensor) -> Tensor:
    """A (C,) vector shaped to broadcast against x (B, C) or (B, C, H, W)."""
    return v.view(1, -1, 1, 1) if x.dim() == 4 else v.view(1, -1)


class ActNorm(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.logs = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """b = -mean, logs = -log(std) per channel over the batch (and positions)."""
        dims = [0, 2, 3] if x.dim() == 4 else [0]
        mean = x.mean(dim=dims)
        std = x.std(dim=dims, unbiased=False)
        self.bias.copy_(-mean)
        self.logs.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and not bool(self.initialized):
            self.initialize(x)
        y = (x + _per_channel(self.bias, x)) * torch.exp(_per_channel(self.logs, x))
        logdet = self.logs.sum() * _spatial(x)
        return y, logdet.expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return y * torch.exp(-_per_channel(self.logs, y)) - _per_channel(self.bias, y)


class InvConv1x1(nn.Module):
    """W = P L (U + diag(sign * exp(log_s))), initialised from a random rotation."""

    def __init__(self, channels: int):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(channels, channels))  # a random orthogonal matrix
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("p", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(s.abs()))

    def weight(self) -> Tensor:
        eye = torch.eye(len(self.log_s), device=self.log_s.device, dtype=self.log_s.dtype)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.p @ lower @ upper  # (C, C)

    def _mix(self, x: Tensor, w: Tensor) -> Tensor:
        if x.dim() == 4:
            return torch.einsum("ij,bjhw->bihw", w, x)
        return x @ w.T

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logdet = self.log_s.sum() * _spatial(x)
        return self._mix(x, self.weight()), logdet.expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return self._mix(y, torch.linalg.inv(self.weight()))


def checkerboard_mask(height: int, width: int, parity: int) -> Tensor:
    """(1, 1, H, W) with ones where (i + j) % 2 == parity."""
    i = torch.arange(height).view(-1, 1)
    j = torch.arange(width).view(1, -1)
    return ((i + j) % 2 == parity).float().view(1, 1, height, width)


def channel_mask(channels: int, parity: int, image: bool) -> Tensor:
    """Ones on the first half of the channels (parity 0) or the second half (parity 1)."""
    half = torch.arange(channels) < channels // 2
    mask = (half if parity == 0 else ~half).float()
    return mask.view(1, -1, 1, 1) if image else mask.view(1, -1)


class AffineCoupling(nn.Module):
    """y = m x + (1 - m)(x exp(log_s) + t), (log_s, t) = net(m x) (or net([m x, cond])).

    `net` maps a tensor shaped like x (plus the channels of `cond`, for conditional couplings)
    to one with twice x's channels: (raw log-scale, shift). Its last layer should start at zero,
    so that the coupling starts as the identity.
    """

    def __init__(self, mask: Tensor, net: nn.Module, scale_clamp: float = 2.0):
        super().__init__()
        self.register_buffer("mask", mask)
        self.net = net
        self.scale_clamp = scale_clamp

    def _scale_shift(self, masked: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        inputs = masked if cond is None else torch.cat([masked, cond], dim=1)
        raw, shift = self.net(inputs).chunk(2, dim=1)
        log_s = self.scale_clamp * torch.tanh(raw / self.scale_clamp)  # in (-c, c)
        keep = 1 - self.mask
        return log_s * keep, shift * keep

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        log_s, shift = self._scale_shift(x * self.mask, cond)
        y = x * torch.exp(log_s) + shift  # the masked part: log_s = shift = 0, so y = x there
        return y, _sum_per_example(log_s)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        log_s, shift = self._scale_shift(y * self.mask, cond)  # m y = m x
        return (y - shift) * torch.exp(-log_s)


class Squeeze(nn.Module):
    """(B, C, H, W) -> (B, 4C, H/2, W/2): each 2x2 block becomes 4 channels."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"squeeze needs even sizes, got {h}x{w}")
        y = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return y.reshape(b, 4 * c, h // 2, w // 2), x.new_zeros(b)

    def inverse(self, y: Tensor) -> Tensor:
        b, c4, h, w = y.shape
        x = y.view(b, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(b, c4 // 4, 2 * h, 2 * w)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I) summed per example, in nats."""
    return _sum_per_example(-0.5 * z.square() - 0.5 * math.log(2 * math.pi))


# --- coupling networks ------------------------------------------------------------------------
class ResNet(nn.Module):
    """(B, C_in, H, W) -> (B, C_out, H, W): conv, residual blocks, zero-initialised output conv."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int, blocks: int):
        super().__init__()
        self.inp = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(hidden, hidden, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(hidden, hidden, 1),
            )
            for _ in range(blocks)
        )
        self.out = nn.Conv2d(hidden, out_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(F.relu(h))


class MLP(nn.Module):
    """(B, D_in) -> (B, D_out) with `layers` hidden ReLU layers; zero-initialised output."""

    def __init__(self, in_features: int, out_features: int, hidden: int, layers: int):
        super().__init__()
        parts: list[nn.Module] = [nn.Linear(in_features, hidden), nn.ReLU()]
        for _ in range(layers - 1):
            parts += [nn.Linear(hidden, hidden), nn.ReLU()]
        self.body = nn.Sequential(*parts)
        self.out = nn.Linear(hidden, out_features)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(x))
