"""The losses of neural style transfer, shared by Gatys, fast style transfer and AdaIN.

All of them compare activations of a fixed VGG (genlab.metrics.vgg) of images in [0, 1]:

- content loss (Gatys et al. 2016, eq. 1) at a deep layer l (relu4_2): the squared difference
  of the activations F_l of the image and P_l of the content image,
      L_content = ||F_l - P_l||^2 / ||P_l||^2
- Gram matrix (eq. 3): channel correlations, averaged over positions,
      G_l = F_l F_l^T / (C_l H_l W_l)                       (C_l x C_l, F_l as C_l x H_l W_l)
- style loss (eqs. 4-5): a weighted sum over layers of the squared Gram difference,
      L_style = sum_l w_l ||G_l - A_l||^2 / ||A_l||^2,   A_l the style image's Gram matrix
- total variation (Mahendran & Vedaldi 2015; Johnson et al. 2016), squared and anisotropic:
      L_tv = mean (x_{i+1,j} - x_{i,j})^2 + mean (x_{i,j+1} - x_{i,j})^2
- AdaIN's style loss (Huang & Belongie 2017, eq. 12) matches per-channel means mu and
  standard deviations sigma instead of Gram matrices, per layer
      ||mu(f) - mu(s)||^2 / ||mu(s)||^2 + ||sigma(f) - sigma(s)||^2 / ||sigma(s)||^2

Deviation: every squared error is divided by its target's squared norm (`relative_error`), where
the paper has constants (1 / (4 N_l^2 M_l^2), 1/2). The reason, measured with the offline
random-weight VGG19 (photograph vs mosaic at 128 px): the mean squared Gram difference falls
from 3.6e-7 at relu1_1 to 7e-11 at relu4_1, so equally weighted absolute errors are all
relu1_1 (colour, not texture), while pretrained weights make the deep layers the large ones.
Relative errors put every layer on the same footing with both networks, so one set of weights
(content 1, style about 1e2..1e3 (see each method), equal w_l) works offline and with the
published VGG19 alike.

`transfer_losses` measures any stylised image the same way (the benchmark's common yardstick);
`padded_to_multiple` lets the feed-forward networks take any image size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.metrics.vgg import VGG, imagenet_normalize

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # Gatys et al. 2016
CONTENT_LAYER = "relu4_2"


def features(vgg: VGG, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
    """Images (B, C, H, W) in [0, 1] -> {layer: activation (B, C_l, H_l, W_l)}."""
    return vgg.named_features(imagenet_normalize(x), layers)


def gram_matrix(f: Tensor) -> Tensor:
    """(B, C, H, W) activations -> (B, C, C) Gram matrices F F^T / (C H W)."""
    b, c, h, w = f.shape
    flat = f.reshape(b, c, h * w)  # (B, C, HW)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def relative_error(x: Tensor, target: Tensor) -> Tensor:
    """||x - target||^2 / ||target||^2 (target broadcast over x's batch, held constant)."""
    target = target.detach().expand_as(x)
    return (x - target).pow(2).mean() / target.pow(2).mean().clamp_min(1e-12)


def content_loss(f: Tensor, target: Tensor) -> Tensor:
    """The relative squared difference of activations (B, C, H, W) from the target's."""
    return relative_error(f, target)


def style_loss(
    grams: dict[str, Tensor], targets: dict[str, Tensor], weights: dict[str, float]
) -> Tensor:
    """sum_l w_l ||G_l - A_l||^2 / ||A_l||^2 over the layers of `weights` (G (B, C, C),
    targets (1 or B, C, C))."""
    return sum(
        weight * relative_error(grams[layer], targets[layer]) for layer, weight in weights.items()
    )


def total_variation(x: Tensor) -> Tensor:
    """Squared anisotropic total variation of images (B, C, H, W), as means."""
    dy = x[:, :, 1:, :] - x[:, :, :-1, :]
    dx = x[:, :, :, 1:] - x[:, :, :, :-1]
    return dy.pow(2).mean() + dx.pow(2).mean()


def mean_std(f: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Per-channel mean and standard deviation over positions: two (B, C, 1, 1) tensors;
    sigma = sqrt(var + eps) (biased variance), as instance normalisation computes it."""
    mu = f.mean((2, 3), keepdim=True)
    sigma = (f.var((2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    return mu, sigma


def moment_loss(f: Tensor, target: Tensor) -> Tensor:
    """AdaIN's style loss of one layer: the relative squared differences of the channel means
    and of the channel standard deviations of f and target (both (B, C, H, W))."""
    mu, sigma = mean_std(f)
    mu_t, sigma_t = mean_std(target)
    return relative_error(mu, mu_t) + relative_error(sigma, sigma_t)


def equal_weights(layers: Sequence[str]) -> dict[str, float]:
    """w_l = 1 / L for each of the L layers (Gatys et al. 2016's choice)."""
    return {layer: 1.0 / len(layers) for layer in layers}


@torch.no_grad()
def transfer_losses(vgg: VGG, output: Tensor, content: Tensor, style: Tensor) -> dict[str, float]:
    """The content loss (relu4_2) of `output` (1, 3, H, W) against `content`, and its style
    loss (Gram, relu1_1 ... relu5_1, equal weights) against `style`: one yardstick for every
    method."""
    layers = (*STYLE_LAYERS, CONTENT_LAYER)
    out, c, s = (features(vgg, x, layers) for x in (output, content, style))
    grams = {layer: gram_matrix(out[layer]) for layer in STYLE_LAYERS}
    targets = {layer: gram_matrix(s[layer]) for layer in STYLE_LAYERS}
    return {
        "content": float(content_loss(out[CONTENT_LAYER], c[CONTENT_LAYER])),
        "style": float(style_loss(grams, targets, equal_weights(STYLE_LAYERS))),
    }


def padded_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """x (B, C, H, W) reflection-padded at the bottom and right to multiples of `multiple`
    (replicated where the image is too small to reflect); returns it and the original (H, W)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h or pad_w:
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, (h, w)
