"""PixelRNN (van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent Neural Networks").

One model, two spatial LSTM layers, chosen by `PixelRNNConfig.layer` (registered as two names,
`pixelrnn-row` and `pixelrnn-diag`, that differ in that field only):

- **Row LSTM** (`layer="row"`, `pixelrnn-row`, Sec. 3.1) processes the image one row at a time. The gates of
  row i come from an input-to-state 1 x k masked convolution of row i (the current pixel's
  channels by R -> G -> B group, mask B) and a state-to-state 1 x k convolution of the hidden
  state of row i - 1:

      [o, f, i, g] = sigma(K_ss * h_{i-1} + K_is * x_i)   (tanh for g)
      c_i = f . c_{i-1} + i . g,   h_i = o . tanh(c_i)

  Its receptive field is a triangle above the pixel (k = 3 widens it by one column per row).

- **Diagonal BiLSTM** (`layer="diagonal"`, `pixelrnn-diag`, Sec. 3.2) skews the input (row r shifted right by r) so
  that the two pixels a state needs, above and to the left, sit in the previous column of the
  skewed map; a column-wise LSTM with a 2 x 1 state-to-state convolution then sweeps the
  diagonals. A second LSTM sweeps the mirrored image (right to left), and its output is shifted
  down one row before the two are added, so no pixel sees the current row to its right: the
  receptive field is the whole past but one value. The last channel of the last pixel of the
  row above reaches the first layer's features only in the next row (mask A excludes it at its
  own pixel, and no pixel follows it in its row), which the shifted right-to-left LSTM does not
  read; outputs more than 3 columns (the 7x7 layer's reach) left of the row's end miss it
  (tested; the paper's architecture has the same property).

Both start with a 7x7 mask-A convolution to 2h features; every LSTM layer has a residual
connection (1x1 convolution h -> 2h added to its input, Sec. 3.4); the head is ReLU -> 1x1 ->
ReLU -> 1x1 to one Bernoulli logit per value or a 256-way softmax per channel.

Why slower than PixelCNN: the LSTMs are sequential in H (rows) or H + W - 1 (diagonals) steps
for training as well as sampling, where PixelCNN's convolutions see the image at once.

Fast sampling: the Row LSTM carries each layer's (h, c) of the row above from one row to the
next and, per value, recomputes one row step of each layer (the 7x7 convolution on the four rows
it reads); the Diagonal BiLSTM runs only on the rows up to the current one (rows below cannot
change it; its right-to-left LSTM needs the whole row, so no state is carried). `LAYERS` holds,
for each layer name, how to build the layer and these two ways of stepping through the rows.

Deviations: CPU-sized defaults (hidden 32, 2 LSTM layers; the paper's MNIST model has 7
Diagonal BiLSTM layers of 16 units).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

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
class PixelRNNConfig:
    data_shape: tuple[int, ...] = (1, 28, 28)  # (C, H, W); from the data
    binarize: bool = False  # True: dynamically binarized data, Bernoulli outputs
    output: str = "categorical"  # 8-bit: "categorical" (256-way) | "logistic_mixture"
    mixtures: int = 5  # logistic_mixture: components per value
    hidden: int = 32  # h: LSTM units; the residual stream carries 2h channels
    layers: int = 2  # LSTM layers
    kernel: int = 3  # Row LSTM: width of the input- and state-to-state convolutions
    head: int = 64  # channels of the output 1x1 layer
    layer: Literal["row", "diagonal"] = "row"  # Row LSTM or Diagonal BiLSTM (see LAYERS)

    def validate(self) -> None:
        validate_image_config(self, "PixelRNN", ("hidden", "layers", "head"))
        if self.layer not in LAYERS:
            raise ValueError(f"layer must be one of {', '.join(LAYERS)}, got {self.layer!r}")
        if self.kernel < 3 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd and >= 3, got {self.kernel}")


def lstm_update(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """gates (B, 4h, ...) = [o, f, i, g] pre-activations, c the previous cell -> (h, c)."""
    o, f, i, g = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class RowMaskedConv(nn.Conv2d):
    """1 x k convolution of one row, masked at the current pixel by channel group (mask B)."""

    def __init__(self, cin: int, cout: int, k: int, data_channels: int):
        super().__init__(cin, cout, (1, k), padding=(0, k // 2))
        mask = raster_mask(cout, cin, (1, k), "B", data_channels, centre=(0, k // 2), out_parts=4)
        self.register_buffer("mask", mask)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class RowLSTM(nn.Module):
    def __init__(self, cin: int, hidden: int, k: int, data_channels: int):
        super().__init__()
        self.hidden = hidden
        self.input_to_state = RowMaskedConv(cin, 4 * hidden, k, data_channels)
        self.state_to_state = nn.Conv2d(hidden, 4 * hidden, (1, k), padding=(0, k // 2))

    def step(self, x_row: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """One row: x_row (B, cin, 1, W), state (h, c) of the row above -> (h, c) of this row."""
        h, c = state
        return lstm_update(self.input_to_state(x_row) + self.state_to_state(h), c)

    def zero_state(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = x.new_zeros(x.shape[0], self.hidden, 1, x.shape[3])
        return h, h

    def forward(self, x: Tensor) -> Tensor:
        """(B, cin, H, W) -> (B, h, H, W), one row at a time."""
        pre = self.input_to_state(x)  # all rows' input-to-state terms at once
        h, c = self.zero_state(x)
        rows = []
        for i in range(x.shape[2]):
            h, c = lstm_update(pre[:, :, i : i + 1] + self.state_to_state(h), c)
            rows.append(h)
        return torch.cat(rows, dim=2)


def skew(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, H, W + H - 1): row r shifted right by r."""
    b, c, h, w = x.shape
    out = x.new_zeros(b, c, h, w + h - 1)
    for r in range(h):
        out[:, :, r, r : r + w] = x[:, :, r]
    return out


def unskew(x: Tensor, width: int) -> Tensor:
    return torch.stack([x[:, :, r, r : r + width] for r in range(x.shape[2])], dim=2)


class DiagonalLSTM(nn.Module):
    """One direction: column by column over the skewed map; the state of (r, t) reads the
    previous column's states at rows r - 1 and r (the pixels above and to the left)."""

    def __init__(self, cin: int, hidden: int, data_channels: int):
        super().__init__()
        self.hidden = hidden
        self.input_to_state = MaskedConv2d(cin, 4 * hidden, 1, "B", data_channels, out_parts=4)
        self.state_to_state = nn.Conv2d(hidden, 4 * hidden, (2, 1))

    def forward(self, x: Tensor) -> Tensor:
        """(B, cin, H, W) -> (B, h, H, W)."""
        b, _, height, width = x.shape
        pre = skew(self.input_to_state(x))  # (B, 4h, H, W + H - 1)
        h = c = x.new_zeros(b, self.hidden, height, 1)
        columns = []
        for t in range(pre.shape[3]):
            from_state = self.state_to_state(F.pad(h, (0, 0, 1, 0)))  # rows r - 1 and r
            h, c = lstm_update(pre[:, :, :, t : t + 1] + from_state, c)
            columns.append(h)
        return unskew(torch.cat(columns, dim=3), width)


class DiagonalBiLSTM(nn.Module):
    def __init__(self, cin: int, hidden: int, data_channels: int):
        super().__init__()
        self.forward_lstm = DiagonalLSTM(cin, hidden, data_channels)
        self.backward_lstm = DiagonalLSTM(cin, hidden, data_channels)

    def forward(self, x: Tensor) -> Tensor:
        left_to_right = self.forward_lstm(x)
        right_to_left = self.backward_lstm(x.flip(3)).flip(3)
        # shifted down one row: row r reads the right-to-left states of row r - 1 only
        return left_to_right + F.pad(right_to_left, (0, 0, 1, 0))[:, :, :-1]


# --- the two layers and how the fast sampler steps through rows with each ---------------------
def _row_step(model: Any, x: Tensor, row: int, states: list) -> tuple[Tensor, list]:
    """Row `row`'s logits and every Row LSTM layer's (h, c) there, from the states of the row
    above: the 7x7 convolution reads rows row - 3 .. row."""
    top = max(0, row - 3)
    h = model.inp(model.network_input(x[:, :, top : row + 1]))[:, :, -1:]
    new_states = []
    for lstm, residual, state in zip(model.lstms, model.residuals, states, strict=True):
        state = state if state is not None else lstm.zero_state(h)
        out, cell = lstm.step(h, state)
        new_states.append((out, cell))
        h = h + residual(out)
    return model.shape_logits(model.head(h))[..., 0, :], new_states


def _carried_states(model: Any, x: Tensor, row: int, previous: Any) -> list:
    """Row LSTM: every layer's (h, c) at the row above (None at the top), carried down."""
    if row == 0:
        return [None] * len(model.lstms)
    return _row_step(model, x, row - 1, previous)[1]  # row - 1 is final now


def _logits_from_states(model: Any, x: Tensor, row: int, context: Any) -> Tensor:
    return _row_step(model, x, row, context)[0]


def _no_context(model: Any, x: Tensor, row: int, previous: Any) -> None:
    return None


def _logits_of_rows_so_far(model: Any, x: Tensor, row: int, context: Any) -> Tensor:
    """Diagonal BiLSTM: the network on rows 0..row (rows below cannot change this one)."""
    return model.logits(x[:, :, : row + 1])[..., -1, :]


@dataclass(frozen=True)
class Layer:
    """One kind of PixelRNN layer: `build(cin, hidden, config)` makes one, and the fast sampler's
    `row_context(model, x, row, previous)` / `row_logits(model, x, row, context)` (see
    AutoregressiveImageModel) step through the rows with it."""

    build: Callable[[int, int, PixelRNNConfig], nn.Module]
    row_context: Callable[..., Any]
    row_logits: Callable[..., Tensor]


def _row_lstm(cin: int, hidden: int, config: PixelRNNConfig) -> nn.Module:
    return RowLSTM(cin, hidden, config.kernel, config.data_shape[0])


def _diagonal_bilstm(cin: int, hidden: int, config: PixelRNNConfig) -> nn.Module:
    return DiagonalBiLSTM(cin, hidden, config.data_shape[0])


LAYERS: dict[str, Layer] = {
    "row": Layer(_row_lstm, row_context=_carried_states, row_logits=_logits_from_states),
    "diagonal": Layer(_diagonal_bilstm, row_context=_no_context, row_logits=_logits_of_rows_so_far),
}


class PixelRNN(AutoregressiveImageModel):
    Config = PixelRNNConfig
    bound_name = "exact"
    # the Gated PixelCNN's recipe (small batches, lr 2e-3 after a warm-up), fewer steps
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 2000,
        "lr": 2e-3,
        "batch_size": 16,
        "warmup_steps": 200,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # --preset gpu (not yet measured): the paper's 7 layers (its MNIST model), wider
        "gpu": {
            "model_config": {"hidden": 64, "layers": 7, "head": 256},
            "train": {"steps": 20000, "batch_size": 64, "lr": 1e-3},
        }
    }

    def __init__(self, config: PixelRNNConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.layer_type = LAYERS[config.layer]
        c, h = config.data_shape[0], config.hidden
        self.inp = MaskedConv2d(c, 2 * h, 7, "A", c)
        self.lstms = nn.ModuleList(
            self.layer_type.build(2 * h, h, config) for _ in range(config.layers)
        )
        self.residuals = nn.ModuleList(
            MaskedConv2d(h, 2 * h, 1, "B", c) for _ in range(config.layers)
        )
        self.head = output_head(2 * h, config.head, c, self.outputs_per_value)

    def logits(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """x (B, C, H, W) in [0, 1] -> (B, C, H, W) logits or (B, 256, C, H, W)."""
        h = self.inp(self.network_input(x))
        for lstm, residual in zip(self.lstms, self.residuals, strict=True):
            h = h + residual(lstm(h))
        return self.shape_logits(self.head(h))

    # --- fast sampling: the layer's way through the rows ---------------------------------------
    def row_context(self, x: Tensor, row: int, labels: Tensor | None, previous: Any) -> Any:
        return self.layer_type.row_context(self, x, row, previous)

    def row_logits(self, x: Tensor, row: int, context: Any, labels: Tensor | None) -> Tensor:
        return self.layer_type.row_logits(self, x, row, context)
