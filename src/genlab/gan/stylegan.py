"""StyleGAN with StyleGAN2's layers and regularizers, at small resolution (32x32 by default).

Papers:
- Karras, Laine & Aila, "A Style-Based Generator Architecture for Generative Adversarial
  Networks", CVPR 2019 (StyleGAN: mapping network to W, styles, per-layer noise, constant
  input, style mixing regularization, the truncation trick in W).
- Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020 (StyleGAN2:
  weight (de)modulation instead of AdaIN, skip generator, residual discriminator, lazy R1,
  path-length regularization).
- Karras et al., "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020
  (StyleGAN2-ADA; its reference code fixes the details the papers leave open, noted below).
- Karras et al., "Progressive Growing of GANs", ICLR 2018 (equalized learning rate, minibatch
  standard deviation); Mescheder et al., "Which Training Methods for GANs do actually
  Converge?", ICML 2018 (R1).

Equations (B = batch, i = input channel, j = output channel, k = kernel position):

    z ~ N(0, I),  z <- z / sqrt(mean(z^2) + 1e-8),  w = f(z)      mapping MLP, lr multiplier 0.01
    s = A(w)                                                       per-layer affine, bias init 1
    w'_ijk  = s_i * w_ijk                                          modulation (StyleGAN2 Eq. 1)
    w''_ijk = w'_ijk / sqrt(sum_{i,k} w'_ijk^2 + 1e-8)             demodulation (StyleGAN2 Eq. 3)
    x <- lrelu(conv(x, w'') + b_noise * N(0, 1) + bias) * sqrt(2)  noise strength b_noise init 0
    w' = w_avg + psi * (w - w_avg)                                 truncation trick; w_avg is an
                                                                   EMA of w in training (0.995)
    style mixing: with prob. p, layers [0, c) get w1 = f(z1), layers [c, L) get w2 = f(z2),
                  c ~ U{1, ..., L-1} per batch
    R1:  gamma / 2 * E_x[||grad_x D(x)||^2]   every r1_every D steps, weighted by r1_every (lazy)
    PL:  E_{w, y}[(||J_w^T y||_2 - a)^2],  y ~ N(0, I) / sqrt(H W),  a <- EMA of ||J_w^T y||
         (decay 0.01), every pl_every G steps, weighted by pl_every (lazy)
    loss: non-saturating, L_D = softplus(-D(x)) + softplus(D(G(z))),  L_G = softplus(-D(G(z)))

Equalized learning rate: every weight is stored as N(0, 1) / lr_mul and multiplied at run time by
lr_mul / sqrt(fan_in) (biases by lr_mul), so Adam's per-parameter steps are the same relative
size in every layer. Leaky ReLU(0.2) is followed by the gain sqrt(2).

Architecture (StyleGAN2 config E/F, the "skip" generator and "resnet" discriminator): synthesis
works at R = the next power of two >= max(H, W), at least 8. A learned 4x4 constant goes
through one modulated 3x3 conv, then each resolution 8..R has an upsampling conv and a conv;
every resolution adds its toRGB output (a modulated 1x1 conv without demodulation) to the
upsampled image so far. With L convolutions there are L + 1 W vectors ("num_ws"): the toRGB of a
resolution shares its w with the next conv. The R x R image is center-cropped to H x W (28x28
MNIST from 32x32); the discriminator sees real and fake H x W images padded back to R x R with
-1 (black), so no border that only G controls can give fakes away.

Deviations, mostly to train on a 2-core CPU in minutes:
- widths: channels at resolution r = min(channel_base / r, channel_max) = 64, 32, 16, 8 for 4,
  8, 16, 32 (StyleGAN2-ADA's cifar config: 512 everywhere); z_dim = w_dim = 128 (paper 512);
  4 mapping layers (paper 8; StyleGAN2-ADA uses 2 for cifar). `--preset gpu` is wider.
- resampling: the generator upsamples as StyleGAN2 does (stride-2 transposed conv, then the
  [1, 3, 3, 1] filter), and its toRGB skips by bilinear 2x (the same filter, with edge
  replication instead of zero padding); the discriminator downsamples by 2x2 average pooling
  (a box filter) instead of the [1, 3, 3, 1] blur + stride-2 conv, so the second 3x3 conv of a
  block runs after the pooling, at half resolution.
- modulated convs default to the activation-scaling form (StyleGAN2-ADA's non-fused path, what
  it trains with): conv(x * s, w) * d_j with d_j = 1 / sqrt(sum_i s_i^2 sum_k w_ijk^2 + 1e-8), the
  same numbers as the paper's grouped convolution (`fused_modconv=True`), which is slower here.
- no ADA: the adversarial loop's DiffAugment (`Tricks`) is applied to every image D sees. R1 is
  the gradient with respect to the real image *before* the tricks (and the -1 padding), through
  them, as StyleGAN2-ADA takes it with respect to the image before its augmentation pipeline.
- the lazy-regularization correction of Adam's lr and betas (lr * k/(k+1), beta ** (k/(k+1)))
  is not applied: the loop is shared by all GANs; with k = 16 it is a 6% difference.
- path-length regularization is off by default (pl_weight 0; StyleGAN2-ADA disables it for
  cifar too); when on, it runs on a batch of B / pl_batch_shrink fresh fakes, as in the paper.
- r1_gamma 10 (StyleGAN2-ADA uses 0.01 for cifar, with ADA and a 512-channel D, and suggests
  0.0002 * R^2 / batch, about 0.006 here). With this small network on mnist-5k, gamma 0.1 and 1
  collapsed to one digit within 600 steps (a digit classifier saw 1.0-1.3 effective classes
  among 500 samples); gamma 10 kept about 6 at step 600 and gave varied digits at 1500.
- the EMA generator is kept by the adversarial loop (train_defaults ema_decay 0.998, which is
  StyleGAN2's 10k-image half-life at batch 32: 0.5 ** (32 / 10000)); buffers (w_avg, pl_mean,
  constant noise) are copied into it, not averaged.
- truncation applies to every layer (StyleGAN2), not only to the coarse ones (StyleGAN's cutoff).
- no class conditioning or activation clamping. Under bf16 autocast (train.precision=bf16) the
  running statistics (w_avg, pl_mean) are computed and stored in fp32 (`update_ema`).

Read top to bottom: layers, the mapping and synthesis networks, the discriminator, the config,
the model.
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
from genlab.data.base import Batch, Dataset, batch_inputs
from genlab.gan import losses
from genlab.gan.losses import Tricks

NOISE_MODES = ("random", "const", "none")
SQRT2 = math.sqrt(2.0)


def lrelu(x: Tensor) -> Tensor:
    """Leaky ReLU(0.2) with gain sqrt(2), which keeps the activations' second moment."""
    return F.leaky_relu(x, 0.2) * SQRT2


def upsample(x: Tensor) -> Tensor:
    """2x bilinear, for the toRGB skips: StyleGAN2's [1, 3, 3, 1] upsampling filter, with edge
    replication instead of zero padding at the border."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------------------------
# Layers: equalized learning rate, modulated convolution
# --------------------------------------------------------------------------------------------


class EqualizedLinear(nn.Module):
    """y = x (W * lr_mul / sqrt(in))^T + b * lr_mul, W ~ N(0, 1) / lr_mul at init."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: bool = False,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:  # (B, in) -> (B, out)
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return lrelu(x) if self.activation else x


class EqualizedConv2d(nn.Module):
    """Conv with 'same' padding and weights scaled at run time by 1 / sqrt(in * k * k)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        *,
        bias: bool = True,
        activation: bool = False,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel * kernel)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:  # (B, in, H, W) -> (B, out, H, W)
        k = self.weight.shape[-1]
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=k // 2)
        return lrelu(x) if self.activation else x


def blur_after_up(x: Tensor) -> Tensor:
    """The [1, 3, 3, 1] low-pass filter after a stride-2 transposed 3x3 conv, per channel.

    (B, C, 2H + 1, 2W + 1) -> (B, C, 2H, 2W). The 4x4 kernel is the outer product of
    [1, 3, 3, 1] normalised to sum 4, the gain of 2x upsampling (StyleGAN2's upfirdn2d).
    """
    c = x.shape[1]
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], device=x.device, dtype=x.dtype)
    kernel = (f[:, None] * f[None, :]) / 16  # (4, 4), sums to 4
    return F.conv2d(F.pad(x, (1, 1, 1, 1)), kernel.expand(c, 1, 4, 4), groups=c)


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    *,
    demodulate: bool = True,
    up: bool = False,
    fused: bool = False,
) -> Tensor:
    """StyleGAN2's modulated convolution with 'same' padding, optionally upsampling 2x.

    x (B, I, H, W), weight (O, I, k, k), styles s (B, I) -> (B, O, H, W), or (B, O, 2H, 2W)
    with up (k = 3: a stride-2 transposed conv, then the [1, 3, 3, 1] filter, as StyleGAN2).
    fused: the paper's form, one weight per sample, w'_ijk = s_i w_ijk, w'' = w' / sqrt(sum w'^2
    + 1e-8), run as a grouped convolution with B groups. Otherwise the same numbers computed by
    scaling the activations: conv(x * s, w) * d_j, d_j = 1 / sqrt(sum_i s_i^2 sum_k w_ijk^2 + 1e-8).
    """
    b, in_ch, h, w = x.shape
    out_ch, _, k, _ = weight.shape
    if fused:
        wb = weight[None] * styles[:, None, :, None, None]  # (B, O, I, k, k)  modulation
        if demodulate:
            wb = wb * torch.rsqrt(wb.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        x = x.reshape(1, b * in_ch, h, w)  # the batch becomes B groups of channels
        if up:  # a transposed conv takes its weight as (in, out / groups, k, k)
            wt = wb.transpose(1, 2).reshape(b * in_ch, out_ch, k, k)
            out = F.conv_transpose2d(x, wt, stride=2, groups=b)  # (1, B * O, 2H + 1, 2W + 1)
        else:
            out = F.conv2d(x, wb.reshape(b * out_ch, in_ch, k, k), padding=k // 2, groups=b)
        out = out.reshape(b, out_ch, *out.shape[2:])
    else:
        x = x * styles[:, :, None, None]
        if up:
            out = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)  # (B, O, 2H+1, 2W+1)
        else:
            out = F.conv2d(x, weight, padding=k // 2)  # (B, O, H, W)
        if demodulate:
            # sum_{i,k} (s_i w_ijk)^2 = sum_i s_i^2 sum_k w_ijk^2: a (B, I) @ (I, O) product
            d = torch.rsqrt(styles.square() @ weight.square().sum(dim=(2, 3)).T + 1e-8)  # (B, O)
            out = out * d[:, :, None, None]
    return blur_after_up(out) if up else out


@torch.no_grad()
def update_ema(average: Tensor, value: Tensor, decay: float) -> None:
    """average <- decay * average + (1 - decay) * value, in the buffer's dtype (fp32).

    Under bf16 autocast `value` comes out of bf16 matmuls; the running average is a buffer that
    keeps fp32 precision (with decay 0.995 a step moves it by 0.5%, about one bf16 rounding), so
    the value is cast up, never the buffer down."""
    average.copy_(value.to(average.dtype).lerp(average, decay))


def mix_styles(w1: Tensor, w2: Tensor, crossover: int, num_ws: int) -> Tensor:
    """The per-layer W stack (B, num_ws, w_dim): w1 for layers < crossover, w2 from it on."""
    layer = torch.arange(num_ws, device=w1.device)[None, :, None]  # (1, L, 1)
    return torch.where(layer < crossover, w1[:, None], w2[:, None])


# --------------------------------------------------------------------------------------------
# Generator: mapping network f and synthesis network g
# --------------------------------------------------------------------------------------------


class MappingNetwork(nn.Module):
    """z (B, z_dim) -> normalize -> `mapping_layers` equalized FC + lrelu -> w (B, w_dim)."""

    def __init__(self, cfg: StyleGANConfig):
        super().__init__()
        self.layers = nn.ModuleList(
            EqualizedLinear(
                cfg.z_dim if i == 0 else cfg.w_dim,
                cfg.w_dim,
                lr_mul=cfg.mapping_lr_mul,
                activation=True,
            )
            for i in range(cfg.mapping_layers)
        )

    def forward(self, z: Tensor) -> Tensor:
        x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)  # 2nd moment -> 1
        for layer in self.layers:
            x = layer(x)
        return x


class SynthesisLayer(nn.Module):
    """Modulated, demodulated 3x3 conv [upsampling 2x] -> + noise -> + bias -> lrelu."""

    def __init__(
        self, in_ch: int, out_ch: int, w_dim: int, resolution: int, *, up: bool, fused: bool
    ):
        super().__init__()
        self.up, self.fused = up, fused
        self.affine = EqualizedLinear(w_dim, in_ch, bias_init=1.0)  # s = A(w), starts near 1
        # No run-time scale: demodulation divides it out anyway (StyleGAN2-ADA does the same).
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.noise_strength = nn.Parameter(torch.zeros(()))  # b_noise, learned, init 0
        # The fixed noise image used by deterministic synthesis (noise="const"); saved with
        # the weights so a reloaded model draws the same pictures.
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x: Tensor, w: Tensor, noise: str, generator: Any = None) -> Tensor:
        styles = self.affine(w)  # (B, I)
        x = modulated_conv2d(x, self.weight, styles, up=self.up, fused=self.fused)  # (B, O, r, r)
        b, _, h, w_ = x.shape
        if noise == "random":  # one N(0, 1) image per sample, shared by all channels
            n = torch.randn(b, 1, h, w_, generator=generator, device=x.device, dtype=x.dtype)
            x = x + n * self.noise_strength
        elif noise == "const":
            x = x + self.noise_const * self.noise_strength
        return lrelu(x + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 conv to image channels, no demodulation (StyleGAN2's tRGB)."""

    def __init__(self, in_ch: int, img_ch: int, w_dim: int, *, fused: bool):
        super().__init__()
        self.fused = fused
        self.affine = EqualizedLinear(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(img_ch, in_ch, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_ch))
        self.weight_gain = 1 / math.sqrt(in_ch)  # equalized lr: no demodulation to undo it

    def forward(self, x: Tensor, w: Tensor) -> Tensor:  # (B, I, H, W) -> (B, C, H, W)
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=self.fused)
        return x + self.bias[None, :, None, None]


class SynthesisNetwork(nn.Module):
    """Per-layer W stack (B, num_ws, w_dim) -> image (B, C, R, R), skip architecture."""

    def __init__(self, cfg: StyleGANConfig):
        super().__init__()
        ch, fused = cfg.channels, cfg.fused_modconv
        self.resolutions = cfg.resolutions  # [4, 8, ..., R]
        self.const = nn.Parameter(torch.randn(ch(4), 4, 4))  # the learned constant input
        convs = [SynthesisLayer(ch(4), ch(4), cfg.w_dim, 4, up=False, fused=fused)]
        for r in self.resolutions[1:]:
            convs.append(SynthesisLayer(ch(r // 2), ch(r), cfg.w_dim, r, up=True, fused=fused))
            convs.append(SynthesisLayer(ch(r), ch(r), cfg.w_dim, r, up=False, fused=fused))
        self.convs = nn.ModuleList(convs)
        img_ch = cfg.data_shape[0]
        self.torgbs = nn.ModuleList(
            ToRGB(ch(r), img_ch, cfg.w_dim, fused=fused) for r in self.resolutions
        )
        self.num_ws = len(convs) + 1  # the last toRGB has a w of its own

    def layer_resolutions(self) -> list[int]:
        """The resolution of the conv each w index drives (the last one: the final toRGB)."""
        return [4] + [r for r in self.resolutions[1:] for _ in range(2)] + [self.resolutions[-1]]

    def forward(self, ws: Tensor, noise: str = "random", generator: Any = None) -> Tensor:
        x = self.const.expand(ws.shape[0], -1, -1, -1)  # (B, C4, 4, 4)
        x = self.convs[0](x, ws[:, 0], noise, generator)
        img = self.torgbs[0](x, ws[:, 1])  # (B, C, 4, 4)
        for i in range(1, len(self.resolutions)):  # resolution 2^(i + 2)
            j = 2 * i - 1  # index of the block's first conv and of its w
            x = self.convs[j](x, ws[:, j], noise, generator)  # (B, Cr, r, r), upsampled
            x = self.convs[j + 1](x, ws[:, j + 1], noise, generator)
            img = upsample(img) + self.torgbs[i](x, ws[:, j + 2])  # skip connections
        return img  # (B, C, R, R), model space (about [-1, 1])


class Generator(nn.Module):
    """Mapping + synthesis + the tracked mean of W (w_avg) and the path-length EMA (pl_mean)."""

    def __init__(self, cfg: StyleGANConfig):
        super().__init__()
        self.data_shape, self.w_avg_beta = cfg.data_shape, cfg.w_avg_beta
        self.mapping = MappingNetwork(cfg)
        self.synthesis = SynthesisNetwork(cfg)
        self.num_ws = self.synthesis.num_ws
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))
        self.register_buffer("pl_mean", torch.zeros(()))

    def map(self, z: Tensor, *, truncation: float = 1.0, update_w_avg: bool = False) -> Tensor:
        """z (B, z_dim) -> w (B, w_dim); truncated towards w_avg when psi != 1."""
        w = self.mapping(z)
        if update_w_avg:  # w_avg <- beta * w_avg + (1 - beta) * mean(w), in fp32 (see update_ema)
            update_ema(self.w_avg, w.detach().float().mean(0), self.w_avg_beta)
        if truncation != 1.0:
            w = self.w_avg + truncation * (w - self.w_avg)  # psi = 0: exactly w_avg
        return w

    def forward(self, ws: Tensor, noise: str = "random", generator: Any = None) -> Tensor:
        """ws (B, num_ws, w_dim) -> image (B, C, H, W) in model space: synthesis, then crop."""
        img = self.synthesis(ws, noise, generator)  # (B, C, R, R)
        _, h, w = self.data_shape
        top, left = (img.shape[2] - h) // 2, (img.shape[3] - w) // 2
        return img[:, :, top : top + h, left : left + w]


# --------------------------------------------------------------------------------------------
# Discriminator: residual blocks, minibatch standard deviation
# --------------------------------------------------------------------------------------------


class DiscriminatorBlock(nn.Module):
    """(B, I, r, r) -> (B, O, r/2, r/2): (conv3 -> pool -> conv3 + pool -> conv1) / sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv0 = EqualizedConv2d(in_ch, in_ch, 3, activation=True)
        self.conv1 = EqualizedConv2d(in_ch, out_ch, 3, activation=True)
        self.skip = EqualizedConv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        y = self.skip(F.avg_pool2d(x, 2))
        x = self.conv1(F.avg_pool2d(self.conv0(x), 2))
        return (x + y) / SQRT2  # keeps the variance of the sum


def minibatch_stddev(x: Tensor, group_size: int, num_channels: int) -> Tensor:
    """Append the std over groups of samples, averaged over features, as extra channels.

    (B, C, H, W) -> (B, C + F, H, W). The group is the largest divisor of B <= group_size.
    """
    b, c, h, w = x.shape
    g = min(group_size, b)
    while b % g:
        g -= 1
    f = num_channels
    y = x.reshape(g, -1, f, c // f, h, w)  # (G, B/G, F, C/F, H, W); sample n is in group n % (B/G)
    y = (y - y.mean(dim=0)).square().mean(dim=0)  # (B/G, F, C/F, H, W) variance over the group
    y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))  # (B/G, F)
    y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # (B, F, H, W)
    return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    """x (B, C, R, R) in [-1, 1] -> logit (B,). StyleGAN2's residual D with equalized lr."""

    def __init__(self, cfg: StyleGANConfig):
        super().__init__()
        ch = cfg.channels
        resolutions = cfg.resolutions[::-1]  # [R, ..., 8, 4]
        self.from_rgb = EqualizedConv2d(cfg.data_shape[0], ch(resolutions[0]), 1, activation=True)
        self.blocks = nn.ModuleList(DiscriminatorBlock(ch(r), ch(r // 2)) for r in resolutions[:-1])
        self.mbstd_group, self.mbstd_channels = cfg.mbstd_group, cfg.mbstd_channels
        c4 = ch(4)
        self.conv = EqualizedConv2d(c4 + cfg.mbstd_channels, c4, 3, activation=True)
        self.fc = EqualizedLinear(c4 * 16, c4, activation=True)
        self.out = EqualizedLinear(c4, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.from_rgb(x)  # (B, C_R, R, R)
        for block in self.blocks:
            x = block(x)  # ... -> (B, C4, 4, 4)
        x = minibatch_stddev(x, self.mbstd_group, self.mbstd_channels)  # (B, C4 + F, 4, 4)
        x = self.fc(self.conv(x).flatten(1))  # (B, C4)
        return self.out(x).squeeze(1)  # (B,)


# --------------------------------------------------------------------------------------------
# Config and model
# --------------------------------------------------------------------------------------------


@dataclass
class StyleGANConfig:
    data_shape: tuple[int, ...] = (1, 32, 32)  # (C, H, W); filled from the dataset
    z_dim: int = 128  # latent z (paper 512)
    w_dim: int = 128  # intermediate latent w (paper 512)
    mapping_layers: int = 4  # depth of the mapping MLP (paper 8; StyleGAN2-ADA cifar 2)
    mapping_lr_mul: float = 0.01  # learning-rate multiplier of the mapping MLP (paper 0.01)
    channel_base: int = 256  # channels at resolution r: min(channel_base // r, channel_max):
    channel_max: int = 64  # 64, 32, 16, 8 at 4, 8, 16, 32 (StyleGAN2: 32768 and 512)
    fused_modconv: bool = False  # grouped conv (the paper's form) vs scaled activations (same
    # numbers; StyleGAN2-ADA trains with the latter, and it is faster on a CPU)
    style_mixing_prob: float = 0.9  # probability of mixing two W's in a training batch
    w_avg_beta: float = 0.995  # decay of the tracked mean of W used by the truncation trick
    mbstd_group: int = 4  # minibatch-stddev group size (StyleGAN2: 4)
    mbstd_channels: int = 1  # minibatch-stddev features (StyleGAN2: 1)
    loss: str = "non-saturating"  # minimax | non-saturating | hinge | wasserstein
    r1_gamma: float = 10.0  # R1 weight on real data (0 = off); lower ones collapsed (above)
    r1_every: int = 16  # lazy R1: every 16 D steps, weighted by 16 (StyleGAN2)
    pl_weight: float = 0.0  # path-length regularization weight (StyleGAN2: 2; 0 = off)
    pl_every: int = 4  # lazy PL: every 4 G steps, weighted by 4 (StyleGAN2)
    pl_decay: float = 0.01  # decay of the EMA `a` of path lengths (StyleGAN2)
    pl_batch_shrink: int = 2  # PL runs on batch // pl_batch_shrink fakes (StyleGAN2)

    @property
    def resolution(self) -> int:
        """R: the power of two >= max(H, W), at least 8, that synthesis works at."""
        return max(8, 1 << (max(self.data_shape[1:]) - 1).bit_length())

    @property
    def resolutions(self) -> list[int]:
        return [2**k for k in range(2, self.resolution.bit_length())]  # [4, 8, ..., R]

    def channels(self, r: int) -> int:
        return min(self.channel_base // r, self.channel_max)

    def validate(self) -> None:
        if len(self.data_shape) != 3 or min(self.data_shape) < 1:
            raise ValueError(f"data_shape must be (C, H, W) with sizes >= 1, got {self.data_shape}")
        for name in ("z_dim", "w_dim", "mapping_layers", "channel_base", "channel_max"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("r1_every", "pl_every", "pl_batch_shrink", "mbstd_group", "mbstd_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.channels(self.resolution) < 1:
            raise ValueError(
                f"channel_base {self.channel_base} leaves no channels at {self.resolution}x"
                f"{self.resolution}; it must be >= {self.resolution}"
            )
        if self.channels(4) % self.mbstd_channels:
            raise ValueError(
                f"mbstd_channels {self.mbstd_channels} must divide the {self.channels(4)} "
                "channels at 4x4"
            )
        if not self.mapping_lr_mul > 0:
            raise ValueError(f"mapping_lr_mul must be > 0, got {self.mapping_lr_mul}")
        if not 0.0 <= self.style_mixing_prob <= 1.0:
            raise ValueError(f"style_mixing_prob must be in [0, 1], got {self.style_mixing_prob}")
        if not 0.0 <= self.w_avg_beta <= 1.0:
            raise ValueError(f"w_avg_beta must be in [0, 1], got {self.w_avg_beta}")
        if not 0.0 < self.pl_decay <= 1.0:
            raise ValueError(f"pl_decay must be in (0, 1], got {self.pl_decay}")
        if self.r1_gamma < 0 or self.pl_weight < 0:
            raise ValueError("r1_gamma and pl_weight must be >= 0")
        losses.check_loss(self.loss)


# A wider setting for a GPU (StyleGAN2-ADA's cifar network at half width; not yet measured).
GPU = {"z_dim": 512, "w_dim": 512, "mapping_layers": 8, "channel_base": 8192, "channel_max": 256}


@dataclass(frozen=True)
class StyleGANSampleOptions:
    """What `sample` takes besides n and the generator (contract.HasSampleOptions)."""

    truncation: float = option(
        1.0, help="psi of the truncation trick: 1 = off, 0 = the mean-W image", ge=0
    )
    noise: str = option(
        "random",
        help="per-layer noise: random (fresh), const (the model's fixed noise) or none",
        choices=NOISE_MODES,
    )


class StyleGAN(nn.Module):
    Config: ClassVar[type] = StyleGANConfig
    SampleOptions: ClassVar[type] = StyleGANSampleOptions
    trainer: ClassVar[str] = "genlab.gan.train"
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)  # DataSpec kinds (contract.py)
    # StyleGAN2's optimizer (Adam lr 0.0025, betas (0, 0.99)) and its 10k-image EMA half-life.
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 5000,  # mnist-5k: 13.9 minutes on one CPU core (docs/benchmarks.md)
        "batch_size": 32,
        "lr_g": 0.0025,
        "lr_d": 0.0025,
        "betas": (0.0, 0.99),
        "ema_decay": 0.998,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {"model_config": GPU, "train": {"batch_size": 64, "steps": 50000}}
    }

    def __init__(self, config: StyleGANConfig | None = None):
        super().__init__()
        config = config if config is not None else StyleGANConfig()
        config.validate()
        self.config = config
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)

    @property
    def num_ws(self) -> int:
        """How many W vectors synthesis takes: one per conv, plus one for the last toRGB."""
        return self.generator.num_ws

    @property
    def device(self) -> torch.device:
        return self.generator.w_avg.device

    # ---- spaces -------------------------------------------------------------------------------

    def _discriminate(self, x: Tensor) -> Tensor:
        """D on H x W images in model space: pad to R x R with -1 (black) -> logits (B,)."""
        r = self.config.resolution
        _, h, w = self.config.data_shape
        top, left = (r - h) // 2, (r - w) // 2
        x = F.pad(x, (left, r - w - left, top, r - h - top), value=-1.0)  # (B, C, R, R)
        return self.discriminator(x)

    @staticmethod
    def _to_unit(x: Tensor) -> Tensor:
        return ((x + 1) / 2).clamp(0, 1)  # model space [-1, 1] -> [0, 1]

    def _check_noise(self, noise: str) -> None:
        if noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {', '.join(NOISE_MODES)}, got {noise!r}")

    # ---- W space: truncation and style mixing ---------------------------------------------------

    def truncate(self, w: Tensor, psi: float) -> Tensor:
        """The truncation trick w' = w_avg + psi (w - w_avg); psi = 0 gives the mean of W."""
        return self.generator.w_avg + psi * (w - self.generator.w_avg)

    def mix_styles(self, w1: Tensor, w2: Tensor, crossover: int) -> Tensor:
        """Per-layer W stack (B, num_ws, w_dim): w1 before layer `crossover`, w2 from it on."""
        return mix_styles(w1, w2, crossover, self.num_ws)

    def training_ws(self, n: int, *, update_w_avg: bool = False) -> Tensor:
        """W stacks for training (n, num_ws, w_dim): with prob. style_mixing_prob, two latents
        crossing over at a random layer c in 1..num_ws-1 (style mixing regularization)."""
        z = torch.randn(n, self.config.z_dim, device=self.device)
        w = self.generator.map(z, update_w_avg=update_w_avg)  # (n, w_dim)
        crossover, w2 = self.num_ws, w  # no mixing: every layer gets w
        if torch.rand(()) < self.config.style_mixing_prob:
            crossover = int(torch.randint(1, self.num_ws, ()))
            w2 = self.generator.map(torch.randn_like(z))
        return self.mix_styles(w, w2, crossover)

    # ---- the PPL / interpolation hooks (deterministic: constant noise, no truncation) ----------

    def sample_latent(self, n: int, *, generator: Any = None) -> Tensor:
        return torch.randn(n, self.config.z_dim, generator=generator, device=self.device)

    def mapping(self, z: Tensor) -> Tensor:
        """z (n, z_dim) -> w (n, w_dim)."""
        return self.generator.map(z)

    def synthesis(self, w: Tensor, *, noise: str = "const", generator: Any = None) -> Tensor:
        """w (n, w_dim) or a per-layer stack (n, num_ws, w_dim) -> images (n, C, H, W) in [0, 1]."""
        self._check_noise(noise)
        ws = w if w.dim() == 3 else w[:, None].expand(-1, self.num_ws, -1)
        return self._to_unit(self.generator(ws, noise, generator))

    def generate(self, z: Tensor) -> Tensor:
        """z (n, z_dim) -> images (n, C, H, W) in [0, 1], deterministic."""
        return self.synthesis(self.mapping(z))

    def synthesis_mixed(self, w1: Tensor, w2: Tensor, crossover: int) -> Tensor:
        """Images whose layers < crossover take w1's styles and the rest w2's, in [0, 1]."""
        return self.synthesis(self.mix_styles(w1, w2, crossover))

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: Any = None,
        truncation: float = 1.0,
        noise: str = "random",
    ) -> Tensor:
        """n images (n, C, H, W) in [0, 1]; z and the noise images are drawn from `generator`.

        truncation: psi of the truncation trick (1 = off, 0 = the mean-W image); noise:
        "random" (fresh per-layer noise), "const" (the model's fixed noise) or "none".
        """
        self._check_noise(noise)
        w = self.generator.map(self.sample_latent(n, generator=generator), truncation=truncation)
        return self.synthesis(w, noise=noise, generator=generator)

    # ---- the adversarial losses ---------------------------------------------------------------

    def discriminator_loss(self, batch: Batch, tricks: Tricks, step: int) -> dict[str, Tensor]:
        """L_D on a real batch and fresh (mixed-style) fakes, plus lazy R1 every r1_every."""
        cfg = self.config
        real = batch_inputs(batch) * 2 - 1  # (B, C, H, W) in [-1, 1]
        with torch.no_grad():
            fake = self.generator(self.training_ws(len(real), update_w_avg=self.training))
        do_r1 = cfg.r1_gamma > 0 and step % cfg.r1_every == 0
        real = real.detach().requires_grad_(do_r1)  # R1 is taken w.r.t. the image before tricks
        real_logits = self._discriminate(tricks(real))
        fake_logits = self._discriminate(tricks(fake))
        loss = losses.discriminator_loss(cfg.loss, real_logits, fake_logits, tricks.label_smoothing)
        out = {"d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean()}
        if do_r1:
            r1 = losses.r1_penalty(real_logits, real)  # E ||grad_x D(x)||^2
            loss = loss + cfg.r1_gamma / 2 * r1 * cfg.r1_every
            out["r1"] = r1.detach()
        return {"loss": loss, **out}

    def generator_loss(self, batch: Batch, tricks: Tricks, step: int) -> dict[str, Tensor]:
        """L_G on fresh (mixed-style) fakes, plus lazy path-length regularization."""
        cfg = self.config
        n = len(batch_inputs(batch))
        fake = self.generator(self.training_ws(n, update_w_avg=self.training))
        fake_logits = self._discriminate(tricks(fake))
        out = {"loss": losses.generator_loss(cfg.loss, fake_logits)}
        if cfg.pl_weight > 0 and step % cfg.pl_every == 0:
            pl = self.path_length_penalty(max(1, n // cfg.pl_batch_shrink))
            out["loss"] = out["loss"] + cfg.pl_weight * pl * cfg.pl_every
            out["pl"] = pl.detach()
        return out

    def discriminator_won(self, d_loss: float) -> bool:
        """D's loss ~0 (the loop's collapse test; never for the wasserstein loss)."""
        return losses.collapsed(self.config.loss, d_loss)

    def path_length_penalty(self, n: int) -> Tensor:
        """(||J_w^T y|| - a)^2 averaged over n fakes, y ~ N(0, I) / sqrt(H W); updates a."""
        ws = self.training_ws(n)  # (n, num_ws, w_dim)
        fake = self.generator(ws)  # (n, C, H, W)
        y = torch.randn_like(fake) / math.sqrt(fake.shape[2] * fake.shape[3])
        (grad,) = torch.autograd.grad((fake * y).sum(), ws, create_graph=True)  # J_w^T y
        lengths = grad.float().square().sum(2).mean(1).sqrt()  # (n,) mean over layers, sqrt
        a = self.generator.pl_mean.lerp(lengths.mean(), self.config.pl_decay)  # fp32, as w_avg
        self.generator.pl_mean.copy_(a.detach())
        return (lengths - a).square().mean()

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Evaluation: L_D and L_G on a batch and fresh fakes (no mixing, penalties or tricks).

        The fakes are not detached, so "loss" (L_D) reaches every parameter.
        """
        real = batch_inputs(batch) * 2 - 1
        w = self.generator.map(torch.randn(len(real), self.config.z_dim, device=self.device))
        fake = self.generator(w[:, None].expand(-1, self.num_ws, -1))
        return losses.evaluation_losses(
            self.config.loss, self._discriminate(real), self._discriminate(fake)
        )

    # ---- figures -------------------------------------------------------------------------------

    @torch.no_grad()
    def truncation_strip(self, z: Tensor, psis: list[float]) -> Tensor:
        """Rows of z, columns of psi: (len(z) * len(psis), C, H, W) in [0, 1], constant noise."""
        w = self.mapping(z)  # (n, w_dim)
        images = [self.synthesis(self.truncate(w, psi)) for psi in psis]  # P x (n, C, H, W)
        return torch.stack(images, dim=1).flatten(0, 1)  # (n * P, C, H, W), row-major

    @torch.no_grad()
    def style_mixing_grid(self, z_a: Tensor, z_b: Tensor, crossover: int) -> Tensor:
        """The StyleGAN figure: (1 + len(z_a)) x (1 + len(z_b)) images, row-major, in [0, 1].

        First row: the sources B; first column: the sources A; cell (i, j): layers < crossover
        (coarse styles) from A_i, the rest (fine styles) from B_j; the corner is white.
        """
        w_a, w_b = self.mapping(z_a), self.mapping(z_b)
        img_a, img_b = self.synthesis(w_a), self.synthesis(w_b)  # (n_a, C, H, W), (n_b, ...)
        rows = [torch.cat([torch.ones_like(img_a[:1]), img_b])]
        for i in range(len(z_a)):
            mixed = self.synthesis_mixed(w_a[i : i + 1].expand(len(z_b), -1), w_b, crossover)
            rows.append(torch.cat([img_a[i : i + 1], mixed]))
        return torch.cat(rows)

    def coarse_crossover(self) -> int:
        """The first w index driving a layer above 8x8: StyleGAN's "coarse" styles are the 4x4
        and 8x8 layers (for R = 8, the 4x4 layer only)."""
        res = self.generator.synthesis.layer_resolutions()
        limit = 8 if self.config.resolution > 8 else 4
        return next(i for i, r in enumerate(res) if r > limit)

    @torch.no_grad()
    def visualize(self, data: Dataset, out_dir: Path, *, generator: torch.Generator) -> list[Path]:
        """Write samples.png, truncation.png (psi 1 -> 0 per row) and style_mixing.png."""
        from genlab.imaging import save_image

        del data  # every figure is drawn from the generator alone
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        was_training = self.training
        self.eval()
        scale = max(1, 64 // max(self.config.data_shape[1:]))  # small images drawn bigger
        paths = [
            save_image(
                self.sample(64, generator=generator), out_dir / "samples.png", nrow=8, scale=scale
            )
        ]
        psis = [1 - i / 8 for i in range(9)]  # 1.0, 0.875, ..., 0.0
        strip = self.truncation_strip(self.sample_latent(6, generator=generator), psis)
        paths.append(save_image(strip, out_dir / "truncation.png", nrow=len(psis), scale=scale))
        z_a = self.sample_latent(5, generator=generator)
        z_b = self.sample_latent(6, generator=generator)
        grid = self.style_mixing_grid(z_a, z_b, self.coarse_crossover())
        paths.append(save_image(grid, out_dir / "style_mixing.png", nrow=7, scale=scale))
        self.train(was_training)
        return paths
