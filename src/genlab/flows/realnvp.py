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

8-bit images are dequantized (uniformly, or with `dequantization="variational"`) and modelled
in logit space (the paper's preprocessing: h = logit(a + (1 - 2a) y), a = 0.05), with the
Jacobians of both maps in the log-likelihood (genlab.flows.flow).

Deviations: ActNorm instead of batch norm; ResNet widths for a CPU (`hidden`, `blocks`).
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
    ResNet,
    Squeeze,
    channel_mask,
    checkerboard_mask,
)


@dataclass
class RealNVPConfig:
    data_shape: tuple[int, ...] = (1, 28, 28)  # (C, H, W) images or (D,) vectors; from the data
    levels: int = 2  # image scales (each halves H and W); the size must divide by 2^levels
    hidden: int = 32  # channels of the coupling ResNets (units of the MLPs for vectors)
    blocks: int = 2  # residual blocks per coupling network (hidden layers for vectors)
    couplings: int = 8  # vectors only: how many couplings
    scale_clamp: float = 2.0  # |log scale| < this in every coupling
    logit_alpha: float = 0.05  # images: h = logit(a + (1 - 2a) y); 0 = h = y - 1/2
    dequantization: str = "uniform"  # images: "uniform" | "variational" (a learned q(u | x))
    dequant_hidden: int = 32  # channels of the variational dequantizer's networks

    def validate(self) -> None:
        validate_flow_options(self)
        if min(self.hidden, self.blocks, self.couplings) < 1 or self.scale_clamp <= 0:
            raise ValueError("hidden, blocks, couplings and scale_clamp must be positive")


# --- the model --------------------------------------------------------------------------------
class RealNVP(Flow):
    Config = RealNVPConfig
    bound_name = "dequantization bound, 1 sample (images); exact (vectors)"
    train_defaults: ClassVar[dict[str, Any]] = {"steps": 3000, "lr": 1e-3, "batch_size": 64}
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # --preset gpu (not yet measured): the paper's coupling ResNets for small images,
        # 8 residual blocks of 64 channels
        "gpu": {
            "model_config": {"hidden": 64, "blocks": 8},
            "train": {"steps": 20000, "batch_size": 64, "lr": 1e-3},
        }
    }

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
                net = MLP(d, 2 * d, config.hidden, config.blocks)
                mask = channel_mask(d, i % 2, image=False)
                layers += [AffineCoupling(mask, net, config.scale_clamp), ActNorm(d)]
            self.scales.append(nn.ModuleList(layers))
        self._build_dequantizer()

    def _coupling(self, mask: Tensor, channels: int) -> list[nn.Module]:
        cfg = self.config
        net = ResNet(channels, 2 * channels, cfg.hidden, cfg.blocks)
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

    # --- h <-> z ---------------------------------------------------------------------------------
    def forward_flow(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """h in model space (logits for images) -> z (flat, (B, D)) and log|det df/dx| (B,)."""
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

    def inverse_flow(self, z: Tensor) -> Tensor:
        """z (B, D) -> h in model space (logits for images)."""
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
