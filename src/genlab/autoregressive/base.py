"""What every autoregressive image model shares: masks, the output distributions, sampling.

An autoregressive image model factorizes the joint distribution of a (C, H, W) image by the chain
rule in raster order (rows top to bottom, columns left to right, and at each pixel the channels
in order R -> G -> B):

    p(x) = prod_i p(x_i | x_<i)

One network evaluates every conditional at once (training and `log_prob` are a single forward
pass) as long as its output at position i never sees inputs at positions >= i; `logits(x)`
returns them all. Sampling must go one value at a time.

Output distributions (`binarize` and `output` in the config):
- binarized data: one Bernoulli logit per value, x in {0, 1};
- 8-bit data: a 256-way softmax per value (x in {0, 1/255, ..., 1}), or (`output=
  "logistic_mixture"`) a mixture of `mixtures` discretized logistics per value, PixelCNN++ style
  (Salimans et al. 2017; here one mixture per channel, each conditioned on the channels before
  it through the masks, instead of their shared mixture with linear channel coefficients).
`log_prob` is exact: the sum of the per-value log-probabilities, in nats.

Sampling (`sample(n, naive=...)`): both samplers draw the value at each position by inverse-CDF
sampling from one uniform per value, the uniforms drawn up front from the caller's generator,
so the two produce the same images whenever their logits agree. The naive sampler runs the whole
network for every value (H W C forward passes). The fast one asks the model for
`row_context(x, i)` once per row (the work that depends only on rows above, e.g. a vertical
stack or an LSTM's states) and `row_logits(x, i, context)` for every value of the row (only the part that can still
change); the default implementations fall back to the full network, and each model overrides
them with what it can cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.contract import class_labels, option
from genlab.data.base import batch_inputs, batch_labels
from genlab.distributions import logistic_mixture_level_log_probs, logistic_mixture_log_prob

LEVELS = 256  # values of an 8-bit channel
OUTPUTS = ("categorical", "logistic_mixture")


def channel_groups(channels: int, data_channels: int, parts: int = 1) -> Tensor:
    """The data channel (R = 0, G = 1, B = 2) each of `channels` features belongs to:
    consecutive groups, within each of `parts` equal parts (a gate's two halves, an LSTM's
    four gates)."""
    if parts > 1:
        return channel_groups(channels // parts, data_channels).repeat(parts)
    return torch.arange(channels) * data_channels // channels


def raster_mask(
    out_channels: int,
    in_channels: int,
    kernel: tuple[int, int],
    mask_type: str,
    data_channels: int = 1,
    *,
    centre: tuple[int, int] | None = None,
    out_parts: int = 1,
) -> Tensor:
    """(out, in, kh, kw) mask of a causal convolution; `centre` (default the kernel's middle)
    is the current pixel's place in the kernel.

    Every position above the centre row and left of the centre on its row is visible. At the
    centre, channels are split into `data_channels` consecutive groups (R, G, B): output group g
    sees input groups < g (type "A", the first layer: a value never sees itself) or <= g (type
    "B", later layers, whose group-g features already exclude value g). `out_parts`: the
    outputs are that many parts (gates), each grouped on its own."""
    kh, kw = kernel
    mask = torch.zeros(out_channels, in_channels, kh, kw)
    ch, cw = centre if centre is not None else (kh // 2, kw // 2)
    mask[:, :, :ch, :] = 1
    mask[:, :, ch, :cw] = 1
    out_group = channel_groups(out_channels, data_channels, out_parts)
    in_group = channel_groups(in_channels, data_channels)
    if mask_type == "A":
        centre = out_group[:, None] > in_group[None, :]
    elif mask_type == "B":
        centre = out_group[:, None] >= in_group[None, :]
    else:
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    mask[:, :, ch, cw] = centre.float()
    return mask


class MaskedConv2d(nn.Conv2d):
    """A convolution whose kernel is multiplied by a fixed causal mask (`raster_mask`)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        mask_type: str,
        data_channels: int = 1,
        out_parts: int = 1,
    ):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        kernel = (kernel_size, kernel_size)
        mask = raster_mask(
            out_channels, in_channels, kernel, mask_type, data_channels, out_parts=out_parts
        )
        self.register_buffer("mask", mask)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


def validate_image_config(config: Any, name: str, sizes: tuple[str, ...]) -> None:
    """Images (C, H, W); binarize only for grey images; the config fields named in `sizes`
    (hidden, head, ...) >= 1, and `hidden` and `head` split evenly into R, G, B groups."""
    if len(config.data_shape) != 3:
        raise ValueError(f"{name} models images (C, H, W), got data_shape {config.data_shape}")
    if config.binarize and config.data_shape[0] != 1:
        raise ValueError("binarize=true is for grey images (1 channel)")
    if config.output not in OUTPUTS:
        raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {config.output!r}")
    if config.binarize and config.output != "categorical":
        raise ValueError("binarized data has Bernoulli outputs: drop output= or binarize=")
    if config.mixtures < 1:
        raise ValueError(f"mixtures must be >= 1, got {config.mixtures}")
    if min(getattr(config, size) for size in sizes) < 1:
        raise ValueError(f"{', '.join(sizes)} must be >= 1")
    c = config.data_shape[0]
    if config.hidden % c or config.head % c:
        raise ValueError(f"hidden and head must divide by the {c} channels (R, G, B groups)")


def output_head(channels: int, head: int, data_channels: int, per_value: int) -> nn.Sequential:
    """ReLU -> 1x1 -> ReLU -> 1x1 to `per_value` outputs for each data channel, all masked
    (type B) by colour group; channel-major output groups (see `shape_logits`)."""
    return nn.Sequential(
        nn.ReLU(),
        MaskedConv2d(channels, head, 1, "B", data_channels),
        nn.ReLU(),
        MaskedConv2d(head, data_channels * per_value, 1, "B", data_channels),
    )


@dataclass(frozen=True)
class AutoregressiveSampleOptions:
    """What `sample` takes besides n and the generator (contract.HasSampleOptions)."""

    label: int | None = option(
        None,
        help="the class of every sample (class-conditional models; default: the classes "
        "cycle over the samples)",
        ge=0,
        keyword="labels",
    )
    naive: bool = option(
        False,
        help="run the whole network for every value (the slow reference sampler; same images)",
        serve=False,
    )


class AutoregressiveImageModel(nn.Module):
    """Base of PixelCNN, Gated PixelCNN and PixelRNN: subclasses build the network and
    implement `logits(x, labels)`; `config` has `data_shape` and `binarize`."""

    config: Any
    SampleOptions: ClassVar[type] = AutoregressiveSampleOptions
    data_kinds = ("image",)  # DataSpec kinds (contract.py)

    # --- the network's view ----------------------------------------------------------------
    @property
    def outputs_per_value(self) -> int:
        if self.config.binarize:
            return 1
        return 3 * self.config.mixtures if self.mixture else LEVELS

    @property
    def mixture(self) -> bool:
        return not self.config.binarize and self.config.output == "logistic_mixture"

    def network_input(self, x: Tensor) -> Tensor:
        """Data in [0, 1] -> the network's input in [-1, 1]."""
        return 2 * x - 1

    def shape_logits(self, out: Tensor) -> Tensor:
        """The last layer's (B, C * K, H, W), channel-major groups -> (B, C, H, W) logits
        (binarized), (B, 256, C, H, W) (8-bit) or (B, 3 mixtures, C, H, W) (mixture)."""
        if self.config.binarize:
            return out
        b, _, h, w = out.shape
        k = self.outputs_per_value
        return out.view(b, self.config.data_shape[0], k, h, w).transpose(1, 2)

    def logits(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    # --- the contract ----------------------------------------------------------------------
    def prepare(self, x: Tensor, *, generator: Any = None) -> Tensor:
        """binarize: a binary draw x ~ Bernoulli(intensity) (dynamic binarization); else x."""
        return torch.bernoulli(x, generator=generator) if self.config.binarize else x

    def conditional_log_prob(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """log p(x | labels) per example, exact, in nats (x already prepared).

        The logits are cast up to at least fp32 first: under bf16 autocast the network runs in
        bf16, and the per-value log-probabilities summed over 784+ values stay in fp32."""
        logits = self.logits(x, labels)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        if self.config.binarize:
            nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        elif self.mixture:
            nll = -logistic_mixture_log_prob(x, logits)
        else:
            target = torch.round(x * (LEVELS - 1)).long()
            nll = F.cross_entropy(logits, target, reduction="none")
        return -nll.flatten(1).sum(1)

    def log_prob(self, x: Tensor, *, generator: Any = None) -> Tensor:
        """log p(x) per example in nats, exact (x prepared: binary or 8-bit levels)."""
        return self.conditional_log_prob(x)

    def loss(self, batch: Any) -> dict[str, Tensor]:
        x = self.prepare(batch_inputs(batch))
        lp = self.conditional_log_prob(x, batch_labels(batch) if self.conditional else None)
        dims = math.prod(self.config.data_shape)
        nll = -lp.mean()
        return {
            "loss": nll / dims,
            "nll": nll.detach(),
            "bits_per_dim": nll.detach() / (dims * math.log(2)),
        }

    conditional = False  # class-conditional models set this and take `labels`

    # --- sampling ----------------------------------------------------------------------------
    def row_context(self, x: Tensor, row: int, labels: Tensor | None, previous: Any) -> Any:
        """What row `row`'s logits need that depends only on rows above it, given the previous
        row's context (None for row 0): e.g. a vertical stack's features, an LSTM's states.
        Default: nothing."""
        return None

    def row_logits(self, x: Tensor, row: int, context: Any, labels: Tensor | None) -> Tensor:
        """Logits of row `row` given x (rows above final, the row filled up to the value being
        sampled): (B, C, W) binarized or (B, 256, C, W). Default: the whole network."""
        return self.logits(x, labels)[..., row, :]

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: Any = None,
        labels: Any = None,
        naive: bool = False,
    ) -> Tensor:
        """n images in [0, 1], one value at a time in raster order (R -> G -> B per pixel).

        `naive=True` runs the whole network for every value; the default reuses per-row work
        (same images for the same generator)."""
        device = next(self.parameters()).device
        x = torch.zeros(n, *self.config.data_shape, device=device)
        y = self._sample_labels(n, labels, device)
        return self._autoregress(x, 0, y, generator, naive)

    @torch.no_grad()
    def complete(
        self, x: Tensor, from_row: int, *, generator: Any = None, labels: Any = None
    ) -> Tensor:
        """Keep rows < from_row of x (prepared data) and sample the rest (in-painting)."""
        y = self._sample_labels(len(x), labels, x.device)
        return self._autoregress(x.clone(), from_row, y, generator, naive=False)

    def _autoregress(
        self, x: Tensor, from_row: int, y: Tensor | None, generator: Any, naive: bool
    ) -> Tensor:
        n, (c, h, w) = len(x), self.config.data_shape
        # one uniform per value, drawn up front: both samplers use the same ones
        uniforms = torch.rand(n, c, h, w, generator=generator, device=x.device)
        x[:, :, from_row:] = 0
        context = None
        for i in range(h):
            if not naive:
                context = self.row_context(x, i, y, context)
            if i < from_row:
                continue
            for j in range(w):
                for k in range(c):
                    if naive:
                        row = self.logits(x, y)[..., i, :]
                    else:
                        row = self.row_logits(x, i, context, y)
                    x[:, k, i, j] = self._draw(row[..., k, j], uniforms[:, k, i, j])
        return x

    def _draw(self, logits: Tensor, u: Tensor) -> Tensor:
        """Inverse-CDF draw of one value per example from its logits, using the uniforms u."""
        if self.config.binarize:
            return (u < torch.sigmoid(logits)).float()
        if self.mixture:  # the 256 levels' probabilities under the mixture
            logits = logistic_mixture_level_log_probs(logits)
        cdf = torch.softmax(logits.double(), dim=1).cumsum(dim=1)  # (B, 256)
        level = torch.searchsorted(cdf, u.double()[:, None]).clamp(max=LEVELS - 1)
        return level[:, 0].float() / (LEVELS - 1)

    def _sample_labels(self, n: int, labels: Any, device: torch.device) -> Tensor | None:
        if not self.conditional:
            if labels is not None:
                raise ValueError(f"{type(self).__name__} is not class-conditional")
            return None
        return class_labels(n, labels, self.config.num_classes, device)

    # --- figures -------------------------------------------------------------------------------
    def visualize(self, data: Any, out_dir: Any, *, generator: torch.Generator) -> list:
        """samples.png (64 samples), completions.png (rows: test images, their top halves, and
        the model's completions of the bottom halves), receptive_field.png (which inputs
        change one output pixel's logits: the gradient, shown where it is non-zero)."""
        from pathlib import Path

        from genlab.autoregressive.figures import receptive_field_figure
        from genlab.imaging import save_image

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters()).device
            paths = [
                save_image(
                    self.sample(64, generator=generator), out_dir / "samples.png", nrow=8, scale=2
                )
            ]
            m = min(len(data), 8)
            pick = torch.randperm(len(data), generator=generator)[:m]
            batch = data.batch(pick)
            x = self.prepare(batch_inputs(batch).to(device), generator=generator)
            labels = batch_labels(batch).to(device) if self.conditional else None
            half = self.config.data_shape[1] // 2
            top = x.clone()
            top[:, :, half:] = 0.5
            done = self.complete(x, half, generator=generator, labels=labels)
            grid = torch.cat([x, top, done])
            paths.append(save_image(grid, out_dir / "completions.png", nrow=m, scale=2))
            path = out_dir / "receptive_field.png"
            paths.append(receptive_field_figure(self, x[:1], path, labels))
            return paths
        finally:
            self.train(was_training)
