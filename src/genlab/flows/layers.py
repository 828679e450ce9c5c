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

Precision: under bf16 autocast only the coupling networks run in bf16. What enters the
log-likelihood stays in fp32: the coupling's scale and shift (cast up), the 1x1 convolution's
W and mixing, ActNorm's data-dependent statistics, and every per-example log-det sum.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def upcast(x: Tensor) -> Tensor:
    """x in at least fp32: bf16/fp16 values (from autocast) go up, fp32/fp64 stay as they are."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def _sum_per_example(x: Tensor) -> Tensor:
    return upcast(x).flatten(1).sum(1)  # log-dets are sums of hundreds of terms: in fp32


def _spatial(x: Tensor) -> int:
    """H W for images, 1 for vectors: how many times a per-channel log-det counts."""
    return x.shape[2] * x.shape[3] if x.dim() == 4 else 1


def _per_channel(v: Tensor, x: Tensor) -> Tensor:
    """A (C,) vector shaped to broadcast against x (B, C) or (B, C, H, W)."""
    return v.view(1, -1, 1, 1) if x.dim() == 4 else v.view(1, -1)


def _distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _global_moments(x: Tensor, dims: list[int]) -> tuple[Tensor, Tensor]:
    """Per-channel mean and (biased) std over every rank's batch: E[x] and E[x^2] averaged."""
    import torch.distributed as dist

    moments = torch.stack([x.mean(dim=dims), (x * x).mean(dim=dims)])  # (2, C)
    dist.all_reduce(moments)
    mean, square = moments / dist.get_world_size()
    return mean, (square - mean * mean).clamp_min(0).sqrt()


class ActNorm(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.logs = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(False))
        # A Python copy of `initialized`, so that forward never reads the buffer: `bool()` of a
        # GPU tensor waits for the GPU (a host-device sync per ActNorm per step) and breaks
        # torch.compile's graph. Loading a state dict (checkpoints, EMA copies) refreshes it.
        self.ready = False

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.ready = bool(self.initialized)  # once per load, not per step

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """b = -mean, logs = -log(std) per channel over the batch (and positions), in fp32.

        Under DDP the statistics are those of the global batch (every rank's, of equal size),
        so all ranks start from the same parameters: DDP synchronises parameters only when it
        wraps the model, before this data-dependent initialisation."""
        x = upcast(x)
        dims = [0, 2, 3] if x.dim() == 4 else [0]
        if _distributed():
            mean, std = _global_moments(x, dims)
        else:
            mean, std = x.mean(dim=dims), x.std(dim=dims, unbiased=False)
        self.bias.copy_(-mean)
        self.logs.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(True)
        self.ready = True

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and not self.ready:
            self.initialize(x)
        y = (x + _per_channel(self.bias, x)) * torch.exp(_per_channel(self.logs, x))
        logdet = self.logs.sum() * _spatial(x)
        return y, logdet.expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return y * torch.exp(-_per_channel(self.logs, y)) - _per_channel(self.bias, y)


class InvConv1x1(nn.Module):
    """W = P L (U + diag(sign * exp(log_s))), initialised from a random rotation.

    W and the channel mixing are computed in fp32 even under bf16 autocast: log|det W| is
    H W sum(log_s) only for the matrix those factors give, and a bf16-rounded W (8-bit
    mantissas) would mix the channels with a matrix of another determinant. With C = 4..48
    channels the mixing is a negligible share of the work.
    """

    def __init__(self, channels: int):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(channels, channels))  # a random orthogonal matrix
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("p", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        # derived constants, not saved: built once here rather than in every forward
        self.register_buffer("eye", torch.eye(channels), persistent=False)
        self.register_buffer("upper_mask", self.lower_mask.T.clone(), persistent=False)
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(s.abs()))

    def weight(self) -> Tensor:
        return lu_weights([self])[0]  # (C, C)

    def _mix(self, x: Tensor, w: Tensor) -> Tensor:
        with _full_precision(x):
            x = upcast(x)
            if x.dim() == 4:
                return torch.einsum("ij,bjhw->bihw", w, x)
            return x @ w.T

    def forward(self, x: Tensor, weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """`weight`: this layer's W when the caller computed it already (see `lu_weights`)."""
        logdet = self.log_s.sum() * _spatial(x)
        w = self.weight() if weight is None else weight
        return self._mix(x, w), logdet.expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return self._mix(y, torch.linalg.inv(self.weight()))


def lu_weights(convs: list[InvConv1x1]) -> tuple[Tensor, ...]:
    """W_k = P_k L_k (U_k + diag(sign_k exp(log_s_k))) of K 1x1 convolutions of one width, in
    one batch of ops: (C, C) each, in fp32.

    A training step needs every W of the flow anew (the factors are parameters). One layer at a
    time that is ~10 tiny kernels forward and ~10 backward per layer, for a few thousand flops;
    stacked, a level costs as many launches as one layer: ~1400 fewer kernel launches per step
    at the gpu preset's 64 layers (bench/glow_step.py). The stack's backward is an unbind, and
    the unbind's a stack."""
    first = convs[0]
    with _full_precision(first.log_s):
        log_s = torch.stack([c.log_s for c in convs])  # (K, C)
        lower = torch.stack([c.lower for c in convs]) * first.lower_mask + first.eye
        upper = torch.stack([c.upper for c in convs]) * first.upper_mask
        sign = torch.stack([c.sign_s for c in convs])
        upper = upper + torch.diag_embed(sign * torch.exp(log_s))  # (K, C, C)
        return (torch.stack([c.p for c in convs]) @ lower @ upper).unbind(0)


def _full_precision(x: Tensor):
    """A block that autocast leaves alone (on x's device), or nothing when autocast is off."""
    device = x.device.type
    if torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device):
        return torch.autocast(device, enabled=False)
    return contextlib.nullcontext()


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
        self.register_buffer("keep", 1 - mask, persistent=False)  # derived: not saved
        self.net = net
        self.scale_clamp = scale_clamp

    def _scale_shift(self, masked: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        inputs = masked if cond is None else torch.cat([masked, cond], dim=1)
        raw, shift = upcast(self.net(inputs)).chunk(2, dim=1)  # the net may run in bf16
        log_s = self.scale_clamp * torch.tanh(raw / self.scale_clamp)  # in (-c, c)
        return log_s * self.keep, shift * self.keep

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
    return _sum_per_example(-0.5 * upcast(z).square() - 0.5 * math.log(2 * math.pi))


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
