"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders").

Two stacks remove PixelCNN's blind spot (Sec. 2.2, Fig. 2):
- the vertical stack sees every pixel of the rows above (and of the current row, which is why
  it is only ever used shifted down by one row): a (k//2 + 1) x k convolution whose output row i
  covers input rows i - k//2 .. i, all k columns;
- the horizontal stack sees the current row left of the current pixel (the pixel itself too
  after the first layer): a 1 x (k//2 + 1) convolution, plus a 1x1 convolution of the vertical
  stack's features shifted down one row. Its layers are residual.
Every layer is gated (Eq. 2): y = tanh(W_f * x + V_f h) * sigmoid(W_g * x + V_g h), with
h a learned embedding of the class for the class-conditional model (`conditional=true`,
`sample(n, labels=...)`). The output head reads the horizontal stack: ReLU -> 1x1 -> ReLU ->
1x1 to one Bernoulli logit per value (binarized) or a 256-way softmax per channel (8-bit, with
R -> G -> B channel groups masked at the current pixel).

Fast sampling: the vertical stack's contribution to row i depends on rows < i only, so it is
computed once per row (`row_context`); for each value of the row only the horizontal stack and
the head run, on that single row (`row_logits`): H + H W C small passes instead of H W C passes
over the whole image.

`log_prob(x)` of the class-conditional model is the exact marginal over a uniform class prior,
log (1/K) sum_y p(x | y) (K passes); the loss trains log p(x | y) with the data's labels.

Deviations: CPU-sized defaults (10 gated layers of 32 channels, 3x3 kernels after a 7x7 first
layer; the paper uses 20 layers of 384 on ImageNet; `--preset gpu` is 15 layers of 128 with 5x5
kernels); ReLU head of 64 channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.autoregressive.base import (
    AutoregressiveImageModel,
    MaskedConv2d,
    output_head,
    raster_mask,
    validate_image_config,
)


@dataclass
class GatedPixelCNNConfig:
    data_shape: tuple[int, ...] = (1, 28, 28)  # (C, H, W); from the data
    binarize: bool = False  # True: dynamically binarized data, Bernoulli outputs
    output: str = "categorical"  # 8-bit: "categorical" (256-way) | "logistic_mixture"
    mixtures: int = 5  # logistic_mixture: components per value
    hidden: int = 32  # channels of both stacks
    layers: int = 10  # gated layers after the first
    kernel: int = 3  # k of the gated layers
    first_kernel: int = 7  # k of the first layer
    head: int = 64  # channels of the output 1x1 layer
    conditional: bool = False  # class-conditional: sample(n, labels=...)
    num_classes: int = 10  # from the data

    def validate(self) -> None:
        validate_image_config(self, "Gated PixelCNN", ("hidden", "layers", "head"))
        if self.kernel < 2 or self.kernel % 2 == 0 or self.first_kernel % 2 == 0:
            raise ValueError("kernel and first_kernel must be odd and >= 3")
        if self.conditional and self.num_classes < 2:
            raise ValueError("conditional=true needs labelled data with >= 2 classes")


def down_shift(x: Tensor) -> Tensor:
    """(B, C, H, W): row i gets row i - 1 (row 0 gets zeros)."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


class HorizontalConv(nn.Conv2d):
    """1 x (k//2 + 1): output column j covers input columns j - k//2 .. j (the current pixel
    masked by channel group: type A or B)."""

    def __init__(self, cin: int, cout: int, k: int, mask_type: str, data_channels: int):
        super().__init__(cin, cout, (1, k // 2 + 1), padding=(0, k // 2))
        mask = raster_mask(
            cout,
            cin,
            (1, k // 2 + 1),
            mask_type,
            data_channels,
            centre=(0, k // 2),
            out_parts=2,
        )
        self.register_buffer("mask", mask)

    def forward(self, x: Tensor) -> Tensor:
        out = self._conv_forward(x, self.weight * self.mask, self.bias)
        return out[..., : x.shape[-1]]


class VerticalConv(nn.Conv2d):
    """(k//2 + 1) x k: output row i covers input rows i - k//2 .. i (all k columns)."""

    def __init__(self, cin: int, cout: int, k: int):
        super().__init__(cin, cout, (k // 2 + 1, k), padding=(k // 2, k // 2))

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x)[:, :, : x.shape[2]]


def gate(x: Tensor) -> Tensor:
    f, g = x.chunk(2, dim=1)
    return torch.tanh(f) * torch.sigmoid(g)


class GatedLayer(nn.Module):
    def __init__(self, cin: int, hidden: int, k: int, first: bool, cfg: GatedPixelCNNConfig):
        super().__init__()
        c = cfg.data_shape[0]
        self.residual = not first
        self.v_conv = VerticalConv(cin, 2 * hidden, k)
        self.h_conv = HorizontalConv(cin, 2 * hidden, k, "A" if first else "B", c)
        self.v_to_h = nn.Conv2d(2 * hidden, 2 * hidden, 1)
        self.h_out = MaskedConv2d(hidden, hidden, 1, "B", c)
        self.embed = nn.Embedding(cfg.num_classes, 2 * hidden) if cfg.conditional else None

    def vertical(self, v: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        """-> (the next vertical features, this layer's term for the horizontal stack)."""
        pre = self.v_conv(v)  # (B, 2h, H, W)
        to_h = self.v_to_h(down_shift(pre))  # row i sees rows < i only
        if self.embed is not None:
            e = self.embed(y)[:, :, None, None]
            pre, to_h = pre + e, to_h + e
        return gate(pre), to_h

    def horizontal(self, h: Tensor, from_v: Tensor) -> Tensor:
        out = self.h_out(gate(self.h_conv(h) + from_v))
        return h + out if self.residual else out


class GatedPixelCNN(AutoregressiveImageModel):
    Config = GatedPixelCNNConfig
    bound_name = "exact"
    # about 27 minutes on the 2-core CPU (0.33 s per step of 16 binarized 28x28 images)
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 4800,
        "lr": 2e-3,
        "batch_size": 16,
        "warmup_steps": 200,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # closer to the paper's size for a GPU: 15 layers of 128 channels, 5x5 kernels
        "gpu": {
            "model_config": {"hidden": 128, "layers": 15, "kernel": 5, "head": 256},
            "train": {"steps": 20000, "batch_size": 64, "lr": 1e-3},
        }
    }

    def __init__(self, config: GatedPixelCNNConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.conditional = config.conditional
        c, h = config.data_shape[0], config.hidden
        self.layers = nn.ModuleList(
            [GatedLayer(c, h, config.first_kernel, True, config)]
            + [GatedLayer(h, h, config.kernel, False, config) for _ in range(config.layers)]
        )
        self.head = output_head(h, config.head, c, self.outputs_per_value)

    def _vertical_terms(self, x: Tensor, y: Tensor | None) -> list[Tensor]:
        v, terms = self.network_input(x), []
        for layer in self.layers:
            v, to_h = layer.vertical(v, y)
            terms.append(to_h)
        return terms

    def _horizontal(self, x: Tensor, terms: list[Tensor]) -> Tensor:
        h = self.network_input(x)
        for layer, from_v in zip(self.layers, terms, strict=True):
            h = layer.horizontal(h, from_v)
        return self.shape_logits(self.head(h))

    def logits(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """x (B, C, H, W) in [0, 1] -> (B, C, H, W) logits or (B, 256, C, H, W)."""
        return self._horizontal(x, self._vertical_terms(x, labels))

    def log_prob(self, x: Tensor, *, generator: Any = None) -> Tensor:
        if not self.conditional:
            return self.conditional_log_prob(x)
        k = self.config.num_classes
        per_class = torch.stack(
            [
                self.conditional_log_prob(x, torch.full((len(x),), y, device=x.device))
                for y in range(k)
            ]
        )  # (K, B)
        return torch.logsumexp(per_class, dim=0) - math.log(k)

    # --- fast sampling ---------------------------------------------------------------------
    def row_context(
        self, x: Tensor, row: int, labels: Tensor | None, previous: Any
    ) -> list[Tensor]:
        """Each layer's vertical term at row `row`, from rows <= row (row itself is unused)."""
        return [t[:, :, -1:] for t in self._vertical_terms(x[:, :, : row + 1], labels)]

    def row_logits(self, x: Tensor, row: int, context: Any, labels: Tensor | None) -> Tensor:
        return self._horizontal(x[:, :, row : row + 1], context)[..., 0, :]
