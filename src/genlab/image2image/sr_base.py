"""The super-resolution family's base class: the degradation, the baseline, the colour space,
the training loss and tiled translation, shared by SRCNN, ESPCN, SRResNet and SRGAN.

A model learns to undo one known degradation, so its training pairs are made on the fly from
clean high-resolution (HR) patches x:

    degrade(x)  = Q(D_s(x))      D_s: bicubic downsampling by the scale s, antialiased;
                                 Q: rounding to 8 bits (a user's low-resolution image is a file)
    baseline(y) = U_s(y)         bicubic upsampling: the classical answer to beat
    loss        = || f(degrade(x)) - x ||^2   (mean squared error, on Y or RGB; see `mode`)

The kernel is Keys' cubic convolution with a = -0.5, the kernel of MATLAB's `imresize` and
PIL's BICUBIC; with antialias=True (torch's `F.interpolate(mode="bicubic", antialias=True)`)
downsampling stretches it by s (support 2s), as imresize does. A mismatched kernel is the known
reason ported models score *below* bicubic: a model trained on one degradation (say, OpenCV's
a = -0.75 kernel without antialiasing, i.e. aliased inputs) and evaluated on another learns to
undo the wrong blur. Here training, `genlab evaluate`, the benchmark and `genlab upscale` all
use `degrade`, so the pairs always match. (At the image edge torch and PIL renormalise the
truncated kernel where MATLAB pads symmetrically: a difference within the cropped border.)

`mode` picks the colour space the network sees:
- "y": the luma Y of BT.601 (MATLAB's rgb2ycbcr, genlab.metrics.restoration), the standard of
  SRCNN and ESPCN: the network maps Y to Y, and the chroma (Cb, Cr) is upsampled bicubically;
  the metrics are on Y, where the eye sees detail;
- "rgb": the network maps RGB to RGB (SRResNet and SRGAN, as in Ledig et al.).
Grey inputs are read as R = G = B and come out grey, so any model takes any image.

`translate(image, tile=...)` upscales an input of any size: inputs larger than `tile` pixels are
cut into tiles that overlap by the network's receptive radius (`receptive_radius`, in input
pixels), and only each tile's centre is kept, so the tiled output equals the untiled one up to
float rounding (tests/image2image/test_sr_base.py) at bounded memory.

A subclass provides `super_resolve(lr)` (network space in, network space out: (B, 1 or 3, h, w)
-> (B, 1 or 3, s h, s w), values ~[0, 1]) and `network_radius`, and its Config has `data_shape`,
`scale`, `mode` and `augment`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.contract import option
from genlab.data.base import batch_inputs
from genlab.metrics.restoration import luma, rgb_to_ycbcr, ycbcr_to_rgb

BICUBIC_RADIUS = 2  # input pixels the a = -0.5 cubic kernel reaches when upsampling
SCALES = (2, 3, 4)
MODES = ("y", "rgb")
# the training schedule every SR model shares (each adds its steps, batch size and lr)
SCHEDULE = {
    "warmup_steps": 50,
    "grad_clip": 0.0,
    "eval_every": 250,
    "sample_every": 500,
    "sample_n": 16,
    "checkpoint_every": 500,
}
DEFAULT_TILE = 256  # input pixels: a 256 x 256 tile of SRResNet's 64 channels holds 16 MiB


@dataclass(frozen=True)
class UpscaleOptions:
    """`genlab upscale --tile N`, the server's image route: how large a piece is upscaled at
    once (memory), never what comes out."""

    tile: int = option(
        DEFAULT_TILE,
        help="largest input tile (pixels) upscaled at once; tiles overlap by the receptive "
        "radius, so the result does not depend on it",
        ge=16,
        le=8192,
    )


def check_sr_config(data_shape: tuple[int, ...], scale: int, mode: str) -> None:
    """The fields every super-resolution Config shares, checked (ValueError naming the field)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(map(str, SCALES))}, got {scale}")
    if mode not in MODES:
        raise ValueError(f"mode must be 'y' or 'rgb', got {mode!r}")
    if len(data_shape) != 3 or data_shape[0] not in (1, 3):
        raise ValueError(f"data_shape must be (1 or 3, H, W) images, got {data_shape}")
    if data_shape[1] % scale or data_shape[2] % scale or min(data_shape[1:]) < 2 * scale:
        raise ValueError(
            f"patches of {data_shape[1]}x{data_shape[2]} are not a multiple of scale {scale} "
            "(set data.image_size to one)"
        )


# --- resampling -------------------------------------------------------------------------------
def modcrop(x: Tensor, scale: int) -> Tensor:
    """(B, C, H, W) cropped at the bottom and right to multiples of the scale."""
    return x[..., : x.shape[-2] // scale * scale, : x.shape[-1] // scale * scale]


def bicubic_downsample(x: Tensor, scale: int) -> Tensor:
    """(B, C, H, W) -> (B, C, H / s, W / s): Keys' cubic (a = -0.5) stretched by s, as
    MATLAB imresize; H and W must be multiples of s."""
    size = (x.shape[-2] // scale, x.shape[-1] // scale)
    return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)


def bicubic_upsample(x: Tensor, scale: int) -> Tensor:
    """(B, C, h, w) -> (B, C, s h, s w) with the same a = -0.5 kernel (torch's antialias path;
    its default upsampling kernel is OpenCV's a = -0.75)."""
    size = (x.shape[-2] * scale, x.shape[-1] * scale)
    return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)


def random_dihedral(x: Tensor) -> Tensor:
    """One of the 8 flips/rotations of a square batch, drawn from the global RNG (the standard
    augmentation of SR training since EDSR, Lim et al. 2017)."""
    transpose, flip_w, flip_h = (torch.rand(3) < 0.5).to(x.device)  # 2^3 = the 8 elements
    # selects rather than Python branches: no host sync, and the loss compiles to one graph
    x = torch.where(transpose, x.transpose(-2, -1), x)
    x = torch.where(flip_w, x.flip(-1), x)
    return torch.where(flip_h, x.flip(-2), x)


class SuperResolver(nn.Module):
    """A super-resolution model: a contract.Restorer (degrade, baseline, crop_border) and
    Translator (translate), trained by MSE unless a subclass says otherwise (SRGAN)."""

    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    translate_inputs: ClassVar[tuple[str, ...]] = ("image",)
    TranslateOptions: ClassVar[type] = UpscaleOptions
    config: Any

    # --- what a subclass provides ---------------------------------------------------------------
    def super_resolve(self, lr: Tensor) -> Tensor:
        """(B, n, h, w) in network space (n = 1 for mode "y", 3 for "rgb") -> (B, n, sh, sw)."""
        raise NotImplementedError

    @property
    def network_radius(self) -> int:
        """An upper bound, in input pixels, of how far an output pixel's inputs lie from the
        input pixel it sits in (tests check it against the gradient's support)."""
        raise NotImplementedError

    # --- the Restorer contract --------------------------------------------------------------------
    @property
    def scale(self) -> int:
        return self.config.scale

    @property
    def crop_border(self) -> int:
        return self.config.scale

    @property
    def receptive_radius(self) -> int:
        """How far (input pixels) tiles must overlap: the network's reach and the chroma's."""
        chroma = BICUBIC_RADIUS if self.config.mode == "y" else 0
        return max(self.network_radius, chroma) + 1  # +1: an output pixel's own input pixel

    def degrade(self, x: Tensor) -> Tensor:
        """(B, C, H, W) clean images in [0, 1] -> their 8-bit bicubic downsampling by the scale
        (H and W first cropped to multiples of it): the model's input."""
        lr = bicubic_downsample(modcrop(x, self.scale), self.scale).clamp(0, 1)
        return (lr * 255).round() / 255

    def baseline(self, y: Tensor) -> Tensor:
        """Bicubic upsampling of an input (B, C, h, w) -> (B, C, s h, s w), in [0, 1]."""
        return bicubic_upsample(y, self.scale).clamp(0, 1)

    # --- colour space -----------------------------------------------------------------------------
    def to_network(self, x: Tensor) -> Tensor:
        """(B, 1 or 3, H, W) images -> what the network sees: Y (B, 1, H, W) or RGB (B, 3, ...)."""
        if self.config.mode == "y":
            return luma(x)
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    def from_network(self, out: Tensor, lr: Tensor) -> Tensor:
        """The network's output (B, n, sH, sW) back to the input's colours, using the input
        lr (B, C, H, W) for the chroma in mode "y"."""
        if self.config.mode == "rgb":
            return out.mean(1, keepdim=True) if lr.shape[1] == 1 else out
        if lr.shape[1] == 1:  # Y = (16 + 219 g) / 255 for a grey level g
            return (out * 255 - 16) / 219
        chroma = bicubic_upsample(rgb_to_ycbcr(lr)[:, 1:], self.scale)  # (B, 2, sH, sW)
        return ycbcr_to_rgb(torch.cat([out, chroma], 1))

    # --- translation ------------------------------------------------------------------------------
    def upscale(self, lr: Tensor) -> Tensor:
        """(B, C, h, w) in [0, 1] -> (B, C, s h, s w) in [0, 1], in one piece."""
        return self.from_network(self.super_resolve(self.to_network(lr)), lr).clamp(0, 1)

    def translate(self, image: Tensor, *, tile: int = DEFAULT_TILE) -> Tensor:
        """(B, C, h, w) low-resolution images in [0, 1] (C = 1 or 3) -> (B, C, s h, s w), cut
        into overlapping tiles of at most `tile` input pixels when larger."""
        if image.dim() != 4 or image.shape[1] not in (1, 3):
            raise ValueError(f"expected (B, 1 or 3, H, W) images, got {tuple(image.shape)}")
        if tile < 1:
            raise ValueError(f"tile must be >= 1, got {tile}")
        b, c, h, w = image.shape
        if h <= tile and w <= tile:
            return self.upscale(image)
        s, r = self.scale, self.receptive_radius
        out = image.new_empty(b, c, h * s, w * s)
        for top in range(0, h, tile):
            for left in range(0, w, tile):
                y0, x0 = max(top - r, 0), max(left - r, 0)  # the tile and its margin
                y1, x1 = min(top + tile + r, h), min(left + tile + r, w)
                piece = self.upscale(image[:, :, y0:y1, x0:x1])  # (B, C, s(y1-y0), s(x1-x0))
                th, tw = min(tile, h - top), min(tile, w - left)
                dy, dx = (top - y0) * s, (left - x0) * s  # the centre inside the piece
                out[:, :, top * s : (top + th) * s, left * s : (left + tw) * s] = piece[
                    :, :, dy : dy + th * s, dx : dx + tw * s
                ]
        return out

    # --- the model contract -----------------------------------------------------------------------
    def training_pair(self, batch: Any) -> tuple[Tensor, Tensor]:
        """A batch of clean patches -> (degraded, clean) images, with a random flip/rotation in
        training when `augment` is on."""
        hr = modcrop(batch_inputs(batch), self.scale)
        if self.training and self.config.augment:
            hr = random_dihedral(hr)
        return self.degrade(hr), hr

    def loss(self, batch: Any) -> dict[str, Tensor]:
        """Mean squared error in network space (Y or RGB in [0, 1]); `psnr` (dB) of the batch's
        mean MSE is logged beside it (patches, no border crop: a training signal, not the
        protocol of genlab evaluate)."""
        lr, hr = self.training_pair(batch)
        mse = F.mse_loss(self.super_resolve(self.to_network(lr)), self.to_network(hr))
        return {"loss": mse, "psnr": -10 * torch.log10(mse.detach().clamp_min(1e-10))}

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """n seeded crops of held-out photographs (genlab.data.photos.demo_crops), degraded and
        upscaled: (n, C, H, W), the training patches' shape."""
        from genlab.data.photos import demo_crops

        c, height, _ = self.config.data_shape
        device = next(self.parameters()).device
        crops = demo_crops(n, height, generator=generator, channels=c).to(device)
        return self.translate(self.degrade(crops))


def ceil_radius(*reaches: float) -> int:
    """Reaches in input pixels (a k x k convolution at resolution r reaches (k - 1) / 2 / r)
    summed and rounded up: a network's receptive radius."""
    return math.ceil(sum(reaches) - 1e-9)
