"""What every genlab flow shares: the standard normal base, dequantization, the contract, figures.

A flow subclasses `Flow` and implements

    forward_flow(h) -> (z (B, D), log|det dz/dh| (B,))   h: data in model space, z ~ N(0, I)
    inverse_flow(z) -> h

and `Flow` turns that into the model contract by the change of variables,

    log p(h) = log N(f(h); 0, I) + log|det df/dh|,

with temperature sampling x = decode(T eps), eps ~ N(0, I) (T = 0 gives the image of the mode
z = 0; Glow's reduced-temperature samples are the same thing because its conditional priors are
folded into `forward_flow`). `encode(x)` / `decode(z)` are the same maps from and to data space
(images in [0, 1], dequantized deterministically at the centre of each value's cell).

8-bit images are dequantized: y = (255 x + u) / 256 with u in [0, 1)^D drawn either uniformly
(Dinh et al. 2017; Kingma & Dhariwal 2018) or from a learned q(u | x) (variational
dequantization, Ho et al. 2019, "Flow++", Sec. 3.1). For the discrete data,

    log P(x) >= E_q[log p(y) - log q(u | x)] - D log 256,

a bound that is tight when q(u | x) = p(y) / P(x) on x's cube, and `log_prob` returns a
one-sample estimate of it in nats (q = 1 for uniform noise). y then goes to model space: logit
space h = logit(a + (1 - 2a) y) (RealNVP, `logit_alpha` = a > 0) or h = y - 1/2 (Glow,
`logit_alpha` = 0), with that map's log|det| in the likelihood.

Vectors (toy2d) are continuous data: `log_prob` is the exact density in nats, no dequantization.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.contract import option
from genlab.data.base import Dataset, batch_inputs
from genlab.flows.layers import (
    AffineCoupling,
    ResNet,
    checkerboard_mask,
    standard_normal_log_prob,
)

DEQUANTIZATIONS = ("uniform", "variational")


def validate_flow_options(config: Any) -> None:
    """The options every flow config shares: `data_shape` with `levels` (square images whose
    size divides by 2^levels, or vectors), `logit_alpha`, `dequantization`, `dequant_hidden`."""
    shape = tuple(config.data_shape)
    if len(shape) == 3:
        levels = config.levels
        if levels < 1 or shape[1] % 2**levels or shape[2] != shape[1]:
            raise ValueError(
                f"square images whose size divides by 2^levels are needed, got {shape} "
                f"with levels={levels}"
            )
    elif len(shape) != 1 or shape[0] < 2:
        raise ValueError(f"data_shape must be (C, H, W) or (D >= 2,), got {shape}")
    if not 0 <= config.logit_alpha < 0.5:
        raise ValueError(f"logit_alpha must be in [0, 0.5), got {config.logit_alpha}")
    if config.dequantization not in DEQUANTIZATIONS:
        raise ValueError(
            f"dequantization must be one of {', '.join(DEQUANTIZATIONS)}, "
            f"got {config.dequantization!r}"
        )
    if config.dequant_hidden < 1:
        raise ValueError(f"dequant_hidden must be >= 1, got {config.dequant_hidden}")


class VariationalDequantizer(nn.Module):
    """q(u | x) on [0, 1)^D: eps ~ N(0, I) -> conditional affine couplings -> sigmoid.

    The couplings (checkerboard masks) see features of x; log q(u | x) = log N(eps) -
    sum log|det couplings| - sum log sigmoid'(h), since u = sigmoid(h) has du/dh = u (1 - u).
    """

    def __init__(self, shape: tuple[int, int, int], hidden: int, couplings: int = 4):
        super().__init__()
        c, height, width = shape
        self.features = nn.Sequential(
            nn.Conv2d(c, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(),
        )
        self.couplings = nn.ModuleList(
            AffineCoupling(
                checkerboard_mask(height, width, i % 2), ResNet(c + hidden, 2 * c, hidden, 1)
            )
            for i in range(couplings)
        )

    def transform(self, eps: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """eps -> (u in (0, 1), log|det du/d eps|) per example, given x in [0, 1]."""
        cond = self.features(2 * x - 1)
        h, logdet = eps, eps.new_zeros(len(eps))
        for coupling in self.couplings:
            h, ld = coupling(h, cond)
            logdet = logdet + ld
        logdet = logdet + (F.logsigmoid(h) + F.logsigmoid(-h)).flatten(1).sum(1)
        return torch.sigmoid(h), logdet

    def forward(self, x: Tensor, generator: Any = None) -> tuple[Tensor, Tensor]:
        """x in [0, 1] -> (u ~ q(u | x) shaped like x, log q(u | x) per example)."""
        eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        u, logdet = self.transform(eps, x)
        return u, standard_normal_log_prob(eps) - logdet


@dataclass(frozen=True)
class FlowSampleOptions:
    """What `sample` takes besides n and the generator (contract.HasSampleOptions)."""

    temperature: float = option(
        1.0, help="T: samples are decode(T eps), eps ~ N(0, I); below 1 for cleaner images", ge=0
    )


class Flow(nn.Module):
    """Base of RealNVP and Glow: subclasses set `config`, `image` and build their layers."""

    config: Any
    image: bool
    data_kinds = ("image", "vector")  # DataSpec kinds (contract.py): RealNVP models vectors
    SampleOptions: ClassVar[type] = FlowSampleOptions

    @property
    def sample_kind(self) -> str:  # contract.sample_kind: it trains on images and vectors
        return "vector" if len(self.config.data_shape) == 1 else "image"

    def _build_dequantizer(self) -> None:
        cfg = self.config
        self.dequantizer = (
            VariationalDequantizer(tuple(cfg.data_shape), cfg.dequant_hidden)
            if self.image and cfg.dequantization == "variational"
            else None
        )

    def forward_flow(self, h: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def inverse_flow(self, z: Tensor) -> Tensor:
        raise NotImplementedError

    def encode(self, x: Tensor) -> Tensor:
        """Data x (images in [0, 1]) -> z (B, D), deterministically (u = 1/2 for images)."""
        return self.forward_flow(self.preprocess(x, centre=True)[0])[0]

    def decode(self, z: Tensor) -> Tensor:
        """z (B, D) -> data x (images in [0, 1]): the inverse of `encode`."""
        return self.postprocess(self.inverse_flow(z))

    # --- data space <-> model space ------------------------------------------------------------
    def preprocess(
        self, x: Tensor, generator: Any = None, *, centre: bool = False
    ) -> tuple[Tensor, Tensor]:
        """x -> (h in model space, log|det dh/dy| - log q(u | x)) per example.

        Images: dequantize x (8-bit levels in [0, 1]) to y, then map y to model space;
        `centre=True` puts u = 1/2 (the middle of each value's cell) instead of noise."""
        if not self.image:
            return x, x.new_zeros(len(x))
        if centre:
            u, log_q = torch.full_like(x, 0.5), x.new_zeros(len(x))
        elif self.dequantizer is None:
            u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            log_q = x.new_zeros(len(x))
        else:
            u, log_q = self.dequantizer(x, generator)
        y = (x * 255 + u) / 256
        a = self.config.logit_alpha
        if a == 0:
            return y - 0.5, -log_q
        p = a + (1 - 2 * a) * y
        # d logit(p) / dy = (1 - 2a) / (p (1 - p))
        logdet = (math.log(1 - 2 * a) - torch.log(p) - torch.log1p(-p)).flatten(1).sum(1)
        return torch.log(p) - torch.log1p(-p), logdet - log_q

    def postprocess(self, h: Tensor) -> Tensor:
        """Model space -> data space: images in [0, 1], the inverse of y = (255 x + 1/2) / 256."""
        if not self.image:
            return h
        a = self.config.logit_alpha
        y = h + 0.5 if a == 0 else (torch.sigmoid(h) - a) / (1 - 2 * a)
        return ((256 * y - 0.5) / 255).clamp(0, 1)

    # --- the contract --------------------------------------------------------------------------
    def log_prob(self, x: Tensor, *, generator: Any = None) -> Tensor:
        """log p(x) in nats per example: exact for vectors; for 8-bit images a one-sample
        estimate of the dequantization bound E_q[log p(y) - log q(u | x)] - D log 256."""
        h, pre = self.preprocess(x, generator)
        z, logdet = self.forward_flow(h)
        lp = standard_normal_log_prob(z) + logdet + pre
        if self.image:
            lp = lp - math.prod(self.config.data_shape) * math.log(256)
        return lp

    def loss(self, batch: Any) -> dict[str, Tensor]:
        lp = self.log_prob(batch_inputs(batch))
        dims = math.prod(self.config.data_shape)
        nll = -lp.mean()
        out = {"loss": nll / dims, "nll": nll.detach()}
        if self.image:  # bits/dim is for discrete data; toy2d densities are continuous
            out["bits_per_dim"] = nll.detach() / (dims * math.log(2))
        return out

    def sample(self, n: int, *, generator: Any = None, temperature: float = 1.0) -> Tensor:
        """eps ~ N(0, I), x = decode(T eps); images come back in [0, 1]."""
        return self.decode_latent(self.sample_latent(n, generator=generator), temperature)

    def sample_latent(self, n: int, *, generator: Any = None) -> Tensor:
        """eps ~ N(0, I): (n, D)."""
        p = next(self.parameters())
        d = math.prod(self.config.data_shape)
        return torch.randn(n, d, generator=generator, device=p.device, dtype=p.dtype)

    def decode_latent(self, z: Tensor, temperature: float = 1.0) -> Tensor:
        """decode(T eps): data (images in [0, 1]) from standard normal eps (n, D)."""
        return self.decode(temperature * z)

    # --- figures -------------------------------------------------------------------------------
    @torch.no_grad()
    def visualize(self, data: Dataset, out_dir: Path, *, generator: torch.Generator) -> list[Path]:
        """Images: samples.png and temperatures.png (rows T = 0.5, 0.7, 0.85, 1, one noise per
        column). 2-D data: density.png (data | learned density | samples) and grid.png (a grid
        of data space and the data, pushed forward into z space)."""
        from genlab.flows.figures import density_figure, grid_figure, temperature_figure

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        was_training = self.training
        self.eval()
        try:
            if self.image:
                return temperature_figure(self, out_dir, generator)
            n = min(len(data), 2000)
            x = batch_inputs(data.batch(torch.randperm(len(data), generator=generator)[:n]))
            x = x.to(next(self.parameters()).device)
            return [
                density_figure(self, x, out_dir / "density.png", generator),
                grid_figure(self, x, out_dir / "grid.png"),
            ]
        finally:
            self.train(was_training)
