"""PixelCNN (van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent Neural Networks").

A stack of masked convolutions (genlab.autoregressive.base.MaskedConv2d): a 7x7 type-A
convolution (the centre value does not see itself), then residual blocks of
ReLU -> 1x1 (2h -> h) -> ReLU -> 3x3 type B (h -> h) -> ReLU -> 1x1 (h -> 2h) with a skip
connection (the paper's Fig. 5), then ReLU -> 1x1 -> ReLU -> 1x1 to the output: one Bernoulli
logit per value for binarized data, a 256-way softmax per channel for 8-bit data. For colour,
every layer's channels are split in R, G, B groups and the masks keep the R -> G -> B order
(type B 1x1 convolutions included).

Its receptive field has a blind spot: stacked 3x3 masks never reach the pixels to the right of
the current column in the rows above beyond a growing triangle (see docs/autoregressive.md and
the Gated PixelCNN, which removes it).

Fast sampling: row i's logits depend on rows i - R .. i only (R = the receptive field's height
above the centre: 3 for the 7x7 layer plus 1 per 3x3 layer), so each value is computed from
that strip of rows instead of the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from genlab.autoregressive.base import (
    AutoregressiveImageModel,
    MaskedConv2d,
    output_head,
    validate_image_config,
)


@dataclass
class PixelCNNConfig:
    data_shape: tuple[int, ...] = (1, 28, 28)  # (C, H, W); from the data
    binarize: bool = False  # True: dynamically binarized data, Bernoulli outputs
    output: str = "categorical"  # 8-bit: "categorical" (256-way) | "logistic_mixture"
    mixtures: int = 5  # logistic_mixture: components per value
    hidden: int = 32  # h: the residual blocks carry 2h channels
    blocks: int = 8  # residual blocks (the paper: 15)
    head: int = 64  # channels of the output 1x1 layers

    def validate(self) -> None:
        validate_image_config(self, "PixelCNN", ("hidden", "blocks", "head"))


class ResidualBlock(nn.Module):
    def __init__(self, hidden: int, data_channels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(2 * hidden, hidden, 1, "B", data_channels),
            nn.ReLU(),
            MaskedConv2d(hidden, hidden, 3, "B", data_channels),
            nn.ReLU(),
            MaskedConv2d(hidden, 2 * hidden, 1, "B", data_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class PixelCNN(AutoregressiveImageModel):
    Config = PixelCNNConfig
    bound_name = "exact"
    # the Gated PixelCNN's recipe (small batches, lr 2e-3 after a warm-up), fewer steps
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 3000,
        "lr": 2e-3,
        "batch_size": 16,
        "warmup_steps": 200,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # --preset gpu (not yet measured): the paper's depth, 15 residual blocks of 2 x 128
        "gpu": {
            "model_config": {"hidden": 128, "blocks": 15, "head": 256},
            "train": {"steps": 20000, "batch_size": 64, "lr": 1e-3},
        }
    }

    def __init__(self, config: PixelCNNConfig):
        super().__init__()
        config.validate()
        self.config = config
        c, h = config.data_shape[0], config.hidden
        self.inp = MaskedConv2d(c, 2 * h, 7, "A", c)
        self.blocks = nn.Sequential(*(ResidualBlock(h, c) for _ in range(config.blocks)))
        self.head = output_head(2 * h, config.head, c, self.outputs_per_value)
        self.reach = 3 + config.blocks  # rows above the centre that row i's logits depend on

    def logits(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """x (B, C, H, W) in [0, 1] -> (B, C, H, W) logits or (B, 256, C, H, W)."""
        h = self.blocks(self.inp(self.network_input(x)))
        return self.shape_logits(self.head(h))

    def row_logits(self, x: Tensor, row: int, context: Any, labels: Tensor | None) -> Tensor:
        """Row `row` from the strip of rows it depends on: the zero padding at the strip's top
        reaches only outputs above row `row`, so the row's logits are the full network's."""
        top = max(0, row - self.reach)
        return self.logits(x[:, :, top : row + 1], labels)[..., -1, :]
