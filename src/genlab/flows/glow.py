"""Glow (Kingma & Dhariwal 2018, "Glow: Generative Flow with Invertible 1x1 Convolutions").

A step of flow is ActNorm -> invertible 1x1 convolution -> affine coupling (Sec. 3, Table 1),
all in genlab.flows.layers. Images use the multi-scale architecture (Sec. 3 and Fig. 2):

    for each of L levels:  squeeze -> K steps of flow -> split (except the last level)

A split factors out half of the channels, z_i, and models them with a learned conditional prior
z_i ~ N(mu(h_i), exp(logs(h_i))^2) computed from the half that continues (a zero-initialised
3x3 convolution); the last level's prior has a learned mean and log-scale per position
("learntop"). Written as eps_i = (z_i - mu) exp(-logs), each prior is one more invertible
layer with log|det| = -sum(logs), so `forward_flow` returns eps ~ N(0, I) and sampling at
temperature T, x = decode(T eps), is the paper's reduced-temperature sampling (Sec. 5.2).

Coupling networks follow the paper: conv3x3 -> ReLU -> conv1x1 -> ReLU -> zero-initialised
conv3x3, `hidden` channels (512 in the paper). The affine scale is soft-clamped (layers.py)
instead of the paper's sigmoid(raw + 2), which bounds it the same way on both sides.

Vectors (toy2d): K steps of ActNorm -> 1x1 "convolution" (a learned D x D LU matrix) ->
affine coupling with MLP networks, and a standard normal base.

8-bit images are dequantized (uniformly by default, or variationally) and mapped to RealNVP's
logit space, h = logit(a + (1 - 2a) y) with a = 0.05; `logit_alpha=0` gives the paper code's
centring h = y - 1/2 instead. See genlab.flows.flow for the bits/dim accounting.

Deviations: logit space by default (measured on mnist-5k, 600 steps of the default recipe
otherwise: 1.96 bits/dim in logit space against 2.79 centred); CPU-sized defaults (see
GlowConfig and `train_defaults`; the paper's K = 32, 512 channels are the `gpu` preset); the
soft-clamped scale above; no additive coupling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genlab.flows.flow import Flow, validate_flow_options
from genlab.flows.layers import (
    MLP,
    ActNorm,
    AffineCoupling,
    InvConv1x1,
    Squeeze,
    channel_mask,
    lu_weights,
    upcast,
)


@dataclass
class GlowConfig:
    data_shape: tuple[int, ...] = (1, 28, 28)  # (C, H, W) images or (D,) vectors; from the data
    levels: int = 2  # L: image levels (each squeezes once); the size must divide by 2^levels
    depth: int = 8  # K: steps of flow per level (vectors: the number of steps)
    hidden: int = 96  # channels of the coupling networks (units of the MLPs for vectors)
    mlp_layers: int = 2  # vectors only: hidden layers of the coupling MLPs
    scale_clamp: float = 2.0  # |log scale| < this in every coupling
    prior_clamp: float = 6.0  # |log-scale| < this in the learned priors
    logit_alpha: float = 0.05  # images: h = logit(a + (1 - 2a) y); 0 = h = y - 1/2 (the paper)
    dequantization: str = "uniform"  # images: "uniform" | "variational" (a learned q(u | x))
    dequant_hidden: int = 32  # channels of the variational dequantizer's networks

    def validate(self) -> None:
        validate_flow_options(self)
        if min(self.depth, self.hidden, self.mlp_layers) < 1:
            raise ValueError("depth, hidden and mlp_layers must be >= 1")
        if self.scale_clamp <= 0 or self.prior_clamp <= 0:
            raise ValueError("scale_clamp and prior_clamp must be positive")


def zero_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A 3x3 convolution that starts at zero (Glow's Conv2dZeros)."""
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def coupling_net(channels: int, hidden: int) -> nn.Sequential:
    """(B, C, H, W) -> (B, 2C, H, W): the paper's NN() (its input is the masked x)."""
    return nn.Sequential(
        nn.Conv2d(channels, hidden, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(hidden, hidden, 1),
        nn.ReLU(),
        zero_conv(hidden, 2 * channels),
    )


def step_of_flow(channels: int, net: nn.Module, mask: Tensor, clamp: float) -> list[nn.Module]:
    return [ActNorm(channels), InvConv1x1(channels), AffineCoupling(mask, net, clamp)]


class GaussianPrior(nn.Module):
    """eps = (z - mu) exp(-logs): a learned diagonal Gaussian as an invertible layer.

    Split priors compute (mu, logs) from the kept half h with a zero conv; the top prior holds
    them as parameters (both start at N(0, I))."""

    def __init__(self, shape: tuple[int, int, int], cond_channels: int, clamp: float):
        super().__init__()
        self.clamp = clamp
        if cond_channels:
            self.conv: nn.Module | None = zero_conv(cond_channels, 2 * shape[0])
        else:
            self.conv = None
            self.mean = nn.Parameter(torch.zeros(shape))
            self.logs = nn.Parameter(torch.zeros(shape))

    def _params(self, cond: Tensor | None, batch: int) -> tuple[Tensor, Tensor]:
        if self.conv is None:
            mean, logs = self.mean.expand(batch, -1, -1, -1), self.logs.expand(batch, -1, -1, -1)
        else:
            mean, logs = upcast(self.conv(cond)).chunk(2, dim=1)  # bf16 conv -> fp32
        return mean, self.clamp * torch.tanh(logs / self.clamp)

    def forward(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mean, logs = self._params(cond, len(z))
        return (z - mean) * torch.exp(-logs), -logs.flatten(1).sum(1)

    def inverse(self, eps: Tensor, cond: Tensor | None = None) -> Tensor:
        mean, logs = self._params(cond, len(eps))
        return mean + eps * torch.exp(logs)


class Glow(Flow):
    Config = GlowConfig
    bound_name = "dequantization bound, 1 sample (images); exact (vectors)"
    # mnist-5k: ~28 min on 2 cores (0.113 s per step in the loop; bench/likelihood_mnist5k.py).
    # Small batches won at equal images seen (600 steps of 64: 1.83 bits/dim; 1200 of 32: 1.66;
    # 2400 of 16: 1.52); 19000 steps reached 1.27 in 36 min.
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 15000,
        "lr": 2e-3,
        "batch_size": 16,
        "warmup_steps": 200,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # the paper's MNIST-scale setting for a GPU: K = 32, 512 channels
        "gpu": {
            "model_config": {"depth": 32, "hidden": 512},
            "train": {"steps": 20000, "batch_size": 128},
        }
    }

    def __init__(self, config: GlowConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.image = len(config.data_shape) == 3
        self.levels = nn.ModuleList()  # per level: squeeze and K steps of flow
        self.priors = nn.ModuleList()  # per level: the prior of its factored-out half
        if self.image:
            self._build_image_flow()
        else:
            d = config.data_shape[0]
            layers: list[nn.Module] = []
            for i in range(config.depth):
                net = MLP(d, 2 * d, config.hidden, config.mlp_layers)
                mask = channel_mask(d, i % 2, image=False)
                layers += step_of_flow(d, net, mask, config.scale_clamp)
            self.levels.append(nn.ModuleList(layers))
        self._build_dequantizer()

    def _build_image_flow(self) -> None:
        cfg = self.config
        c, size = cfg.data_shape[0], cfg.data_shape[1]
        for level in range(cfg.levels):
            c, size = 4 * c, size // 2
            layers: list[nn.Module] = [Squeeze()]
            for _ in range(cfg.depth):
                mask = channel_mask(c, 0, image=True)  # the 1x1 convs do the permuting
                layers += step_of_flow(c, coupling_net(c, cfg.hidden), mask, cfg.scale_clamp)
            self.levels.append(nn.ModuleList(layers))
            if level < cfg.levels - 1:
                self.priors.append(GaussianPrior((c // 2, size, size), c // 2, cfg.prior_clamp))
                c //= 2
            else:
                self.priors.append(GaussianPrior((c, size, size), 0, cfg.prior_clamp))

    # --- h <-> z ---------------------------------------------------------------------------------
    def forward_flow(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """h in model space -> eps (B, D) ~ N(0, I) under the model, and log|det d eps/dh|."""
        logdet, parts = h.new_zeros(len(h)), []
        for level, layers in enumerate(self.levels):
            convs = [layer for layer in layers if isinstance(layer, InvConv1x1)]
            weights = iter(lu_weights(convs))  # all of the level's W at once (see lu_weights)
            for layer in layers:
                h, ld = layer(h, next(weights)) if isinstance(layer, InvConv1x1) else layer(h)
                logdet = logdet + ld
            if not self.image:
                break
            if level < len(self.levels) - 1:
                h, z = h.chunk(2, dim=1)  # z is factored out, h goes on
                eps, ld = self.priors[level](z, h)
            else:
                eps, ld = self.priors[level](h)
            parts.append(eps.flatten(1))
            logdet = logdet + ld
        if not self.image:
            return h, logdet
        return torch.cat(parts, dim=1), logdet

    def inverse_flow(self, eps: Tensor) -> Tensor:
        """eps (B, D) -> h in model space."""
        if not self.image:
            h = eps
            for layer in reversed(self.levels[0]):
                h = layer.inverse(h)
            return h
        shapes = self._latent_shapes()
        pieces = list(torch.split(eps, [math.prod(s) for s in shapes], dim=1))
        b = len(eps)
        h = self.priors[-1].inverse(pieces[-1].view(b, *shapes[-1]))
        for level in range(len(self.levels) - 1, -1, -1):
            if level < len(self.levels) - 1:
                z = self.priors[level].inverse(pieces[level].view(b, *shapes[level]), h)
                h = torch.cat([h, z], dim=1)
            for layer in reversed(self.levels[level]):
                h = layer.inverse(h)
        return h

    def _latent_shapes(self) -> list[tuple[int, int, int]]:
        c, size = self.config.data_shape[0], self.config.data_shape[1]
        shapes = []
        for level in range(self.config.levels):
            c, size = 4 * c, size // 2
            if level < self.config.levels - 1:
                c //= 2
            shapes.append((c, size, size))
        return shapes
