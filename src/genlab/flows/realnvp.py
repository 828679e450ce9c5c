"""RealNVP (Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation using Real NVP").

An invertible f: x -> z built from affine couplings (genlab.flows.layers), trained by exact
maximum likelihood through the change of variables

    log p(x) = log N(f(x); 0, I) + log|det df/dx|.

Images (the paper's multi-scale architecture, Sec. 3.6): each scale applies 3 checkerboard
couplings, squeezes (B, C, H, W) -> (B, 4C, H/2, W/2), applies 3 channel-wise couplings, then
factors out half of the channels (they go straight to z); the last scale applies 4 checkerboard
couplings. Masks alternate so every dimension gets transformed. Coupling networks are small
ResNets whose last convolution starts at zero (each coupling starts as the identity); the scale
is soft-clamped (layers.AffineCoupling). ActNorm follows every coupling (in place of the
paper's batch norm: it needs no running statistics and has the same data-dependent start).

Vectors (toy2d): a stack of couplings with alternating halves, each followed by ActNorm, with
MLP coupling networks.

8-bit images are dequantized uniformly, y = (255 x + u) / 256 with u ~ U[0, 1)^D, and modelled
in logit space (the paper's preprocessing: y' = logit(a + (1 - 2a) y), a = 0.05), with the
Jacobians of both maps in the log-likelihood. For the discrete data,
log P(x) >= E_u[log p(y)] - D log 256; `log_prob` returns a one-sample estimate of that bound
in nats (bits/dim = -log P / (D ln 2)).

Deviations: ActNorm instead of batch norm; ResNet widths for a CPU (`hidden`, `blocks`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.data.base import batch_inputs
from genlab.flows.layers import (
    ActNorm,
    AffineCoupling,
    Squeeze,
    channel_mask,
    checkerboard_mask,
    standard_normal_log_prob,
)


@dataclass
class RealNVPConfig:
    data_shape: tuple[int, ...] = (1, 28, 28)  # (C, H, W) images or (D,) vectors; from the data
    levels: int = 2  # image scales (each halves H and W); the size must divide by 2^levels
    hidden: int = 32  # channels of the coupling ResNets (units of the MLPs for vectors)
    blocks: int = 2  # residual blocks per coupling network (hidden layers for vectors)
    couplings: int = 8  # vectors only: how many couplings
    scale_clamp: float = 2.0  # |log scale| < this in every coupling
    logit_alpha: float = 0.05  # images: y' = logit(a + (1 - 2a) y)

    def validate(self) -> None:
        if len(self.data_shape) == 3:
            size = self.data_shape[1]
            if self.levels < 1 or size % 2**self.levels or self.data_shape[2] != size:
                raise ValueError(
                    f"square images whose size divides by 2^levels are needed, got "
                    f"{self.data_shape} with levels={self.levels}"
                )
        elif len(self.data_shape) != 1 or self.data_shape[0] < 2:
            raise ValueError(f"data_shape must be (C, H, W) or (D >= 2,), got {self.data_shape}")
        if min(self.hidden, self.blocks, self.couplings) < 1 or self.scale_clamp <= 0:
            raise ValueError("hidden, blocks, couplings and scale_clamp must be positive")
        if not 0 < self.logit_alpha < 0.5:
            raise ValueError(f"logit_alpha must be in (0, 0.5), got {self.logit_alpha}")


# --- coupling networks ------------------------------------------------------------------------
class ResNet(nn.Module):
    """(B, C, H, W) -> (B, 2C, H, W): conv, residual blocks, zero-initialised output conv."""

    def __init__(self, channels: int, hidden: int, blocks: int):
        super().__init__()
        self.inp = nn.Conv2d(channels, hidden, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(hidden, hidden, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(hidden, hidden, 1),
            )
            for _ in range(blocks)
        )
        self.out = nn.Conv2d(hidden, 2 * channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(F.relu(h))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int, layers: int):
        super().__init__()
        parts: list[nn.Module] = [nn.Linear(dim, hidden), nn.ReLU()]
        for _ in range(layers - 1):
            parts += [nn.Linear(hidden, hidden), nn.ReLU()]
        self.body = nn.Sequential(*parts)
        self.out = nn.Linear(hidden, 2 * dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(x))


# --- the model --------------------------------------------------------------------------------
class RealNVP(nn.Module):
    Config = RealNVPConfig
    bound_name = "uniform dequantization bound, 1 sample (images); exact (vectors)"
    train_defaults: ClassVar[dict[str, Any]] = {"steps": 3000, "lr": 1e-3, "batch_size": 64}

    def __init__(self, config: RealNVPConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.image = len(config.data_shape) == 3
        self.scales = nn.ModuleList()  # one ModuleList of layers per scale
        if self.image:
            self._build_image_flow()
        else:
            d = config.data_shape[0]
            layers = []
            for i in range(config.couplings):
                net = MLP(d, config.hidden, config.blocks)
                mask = channel_mask(d, i % 2, image=False)
                layers += [AffineCoupling(mask, net, config.scale_clamp), ActNorm(d)]
            self.scales.append(nn.ModuleList(layers))

    def _coupling(self, mask: Tensor, channels: int) -> list[nn.Module]:
        cfg = self.config
        net = ResNet(channels, cfg.hidden, cfg.blocks)
        return [AffineCoupling(mask, net, cfg.scale_clamp), ActNorm(channels)]

    def _build_image_flow(self) -> None:
        c, size = self.config.data_shape[0], self.config.data_shape[1]
        for level in range(self.config.levels + 1):
            layers: list[nn.Module] = []
            last = level == self.config.levels
            for i in range(4 if last else 3):
                layers += self._coupling(checkerboard_mask(size, size, i % 2), c)
            if not last:
                layers.append(Squeeze())
                c, size = 4 * c, size // 2
                for i in range(3):
                    layers += self._coupling(channel_mask(c, i % 2, image=True), c)
                c //= 2  # half the channels are factored out after this scale
            self.scales.append(nn.ModuleList(layers))

    # --- x <-> z ---------------------------------------------------------------------------------
    def preprocess(self, x: Tensor, generator: Any = None) -> tuple[Tensor, Tensor]:
        """8-bit images in [0, 1] -> logit space, with log|det| of the map from y (per example).

        Uniform dequantization y = (255 x + u) / 256 happens here for images."""
        if not self.image:
            return x, x.new_zeros(len(x))
        u = torch.rand(x.shape, generator=generator, device=x.device)
        y = (x * 255 + u) / 256
        a = self.config.logit_alpha
        p = a + (1 - 2 * a) * y
        logit = torch.log(p) - torch.log1p(-p)
        # d logit / d y = (1 - 2a) / (p (1 - p))
        logdet = (math.log(1 - 2 * a) - torch.log(p) - torch.log1p(-p)).flatten(1).sum(1)
        return logit, logdet

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x in model space (logits for images) -> z (flat, (B, D)) and log|det df/dx| (B,)."""
        h, logdet, parts = x, x.new_zeros(len(x)), []
        for i, layers in enumerate(self.scales):
            for layer in layers:
                h, ld = layer(h)
                logdet = logdet + ld
            if self.image and i < len(self.scales) - 1:
                out, h = h.chunk(2, dim=1)  # factor out half of the channels
                parts.append(out.flatten(1))
        parts.append(h.flatten(1))
        return torch.cat(parts, dim=1), logdet

    def decode(self, z: Tensor) -> Tensor:
        """z (B, D) -> x in model space (logits for images)."""
        shapes = self._latent_shapes()
        sizes = [math.prod(s) for s in shapes]
        pieces = list(torch.split(z, sizes, dim=1))
        h = pieces[-1].view(len(z), *shapes[-1])
        for i in range(len(self.scales) - 1, -1, -1):
            if self.image and i < len(self.scales) - 1:
                h = torch.cat([pieces[i].view(len(z), *shapes[i]), h], dim=1)
            for layer in reversed(self.scales[i]):
                h = layer.inverse(h)
        return h

    def _latent_shapes(self) -> list[tuple[int, ...]]:
        if not self.image:
            return [tuple(self.config.data_shape)]
        c, size = self.config.data_shape[0], self.config.data_shape[1]
        shapes = []
        for _ in range(self.config.levels):
            c, size = 4 * c, size // 2
            shapes.append((c // 2, size, size))
            c //= 2
        shapes.append((c, size, size))
        return shapes

    # --- the contract ----------------------------------------------------------------------------
    def log_prob(self, x: Tensor, *, generator: Any = None) -> Tensor:
        """log p(x) in nats per example: exact for vectors; for 8-bit images a one-sample
        estimate of the dequantization bound E_u[log p(y)] - D log 256."""
        h, pre = self.preprocess(x, generator)
        z, logdet = self.encode(h)
        lp = standard_normal_log_prob(z) + logdet + pre
        if self.image:
            lp = lp - math.prod(self.config.data_shape) * math.log(256)
        return lp

    def loss(self, batch: Any) -> dict[str, Tensor]:
        x = batch_inputs(batch)
        lp = self.log_prob(x)
        dims = math.prod(self.config.data_shape)
        nll = -lp.mean()
        return {
            "loss": nll / dims,
            "nll": nll.detach(),
            "bits_per_dim": nll.detach() / (dims * math.log(2)),
        }

    def sample(self, n: int, *, generator: Any = None, temperature: float = 1.0) -> Tensor:
        """z ~ N(0, T^2 I) -> x; images come back in [0, 1]."""
        device = next(self.parameters()).device
        d = math.prod(self.config.data_shape)
        z = temperature * torch.randn(n, d, generator=generator, device=device)
        x = self.decode(z)
        if self.image:
            a = self.config.logit_alpha
            x = ((torch.sigmoid(x) - a) / (1 - 2 * a)).clamp(0, 1)
        return x
