"""Fast WaveNet generation (Paine et al. 2016, "Fast Wavenet Generation Algorithm").

The naive sampler runs the whole network over the receptive field (R inputs) for every new
sample, although only one output position is new. Dilated layer l with kernel k and dilation d
reads its own input at t, t - d, ..., t - (k - 1) d; all but the first were computed during
earlier steps. So each layer keeps a queue of its last (k - 1) d inputs (here a ring buffer
indexed by t mod (k - 1) d, zeros at the start: the convolution's left padding): at step t it
reads the taps it needs, then pushes its input at t in place of the oldest. A new sample then
costs one position's work per layer, O(layers), instead of a pass over R positions per layer.

Per step and layer the work is two small matrix products, written as such:

    pre = [x_{t-(k-1)d}, ..., x_{t-d}, x_t, u_t] W^T + b      W = [W_f, W_g conv taps | V' local]
    z   = tanh(pre_f) * sigmoid(pre_g)                         b = conv bias + V h (the label)
    [skip, residual] = z W_out^T + b_out

the label term folded into the bias once per call, the local features' 1x1 convolution folded
into the same product. The codes are drawn from the same uniforms as the naive sampler
(`WaveNet.draw`), so both give the same samples (tests/audio/test_wavenet.py checks equality).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from genlab.audio.wavenet import ResidualLayer, WaveNet


@dataclass
class LayerQueue:
    """One dilated layer ready for step-by-step use: its past inputs and flattened weights."""

    buffer: Tensor  # (size, B, R): the layer's inputs at t - size .. t - 1, at index t mod size
    dilation: int
    taps: int  # k - 1 past inputs read per step
    weight: Tensor  # (2G, k R [+ C']): conv taps oldest first, then the local 1x1
    bias: Tensor  # (B, 2G): conv bias + label embedding (+ local bias)
    out_weight: Tensor  # (S [+ R], G)
    out_bias: Tensor
    skip_channels: int
    residual: bool

    @classmethod
    def of(cls, layer: ResidualLayer, labels: Tensor | None, batch: int, like: Tensor):
        conv = layer.conv
        k, r = conv.kernel_size[0], conv.in_channels
        weight = conv.weight.permute(0, 2, 1).reshape(conv.out_channels, k * r)  # tap-major
        bias = conv.bias.expand(batch, -1)
        if layer.label is not None:
            bias = bias + layer.label(labels)
        if layer.local is not None:
            weight = torch.cat([weight, layer.local.weight[:, :, 0]], dim=1)
            bias = bias + layer.local.bias
        size = (k - 1) * layer.dilation
        return cls(
            buffer=like.new_zeros(size, batch, r),
            dilation=layer.dilation,
            taps=k - 1,
            weight=weight,
            bias=bias.contiguous(),
            out_weight=layer.out.weight[:, :, 0],
            out_bias=layer.out.bias,
            skip_channels=layer.skip_channels,
            residual=layer.residual,
        )

    def __call__(self, h: Tensor, t: int, u_t: Tensor | None) -> tuple[Tensor, Tensor]:
        """The layer's input h (B, R) at step t -> (its output (B, R), its skip (B, S))."""
        size = len(self.buffer)
        past = [self.buffer[(t - j * self.dilation) % size] for j in range(self.taps, 0, -1)]
        x = torch.cat([*past, h] if u_t is None else [*past, h, u_t], dim=1)
        self.buffer[t % size] = h  # after reading: the slot held the input from t - size
        pre = torch.addmm(self.bias, x, self.weight.t())  # (B, 2G)
        f, g = pre.chunk(2, dim=1)
        out = F.linear(torch.tanh(f) * torch.sigmoid(g), self.out_weight, self.out_bias)
        skip = out[:, : self.skip_channels]
        return (h + out[:, self.skip_channels :] if self.residual else h), skip


def generate(
    model: WaveNet, uniforms: Tensor, labels: Tensor | None, u: Tensor | None, temperature: float
) -> Tensor:
    """Codes (B, T) drawn step by step with per-layer queues: uniforms (B, T, 1 or 2) float64,
    labels (B,) or None, upsampled features u (B, C', T) or None."""
    n, length = uniforms.shape[:2]
    like = next(model.parameters())
    queues = [LayerQueue.of(layer, labels, n, like) for layer in model.layers]
    _, hidden, _, out = model.head  # ReLU -> 1x1 -> ReLU -> 1x1
    codes = torch.empty(n, length, dtype=torch.long, device=uniforms.device)
    previous = torch.full((n, 1), model.silence(), device=uniforms.device)
    features = None if u is None else u.permute(2, 0, 1).contiguous()  # (T, B, C')
    for t in range(length):
        h = model.inputs(previous)[..., 0]  # (B, R)
        skips: Tensor | int = 0
        for queue in queues:
            h, skip = queue(h, t, None if features is None else features[t])
            skips = skips + skip
        a = F.linear(torch.relu(skips), hidden.weight[:, :, 0], hidden.bias)
        logits = F.linear(torch.relu(a), out.weight[:, :, 0], out.bias)  # (B, K)
        codes[:, t] = model.draw(logits, uniforms[:, t], temperature)
        previous = codes[:, t : t + 1]
    return codes
