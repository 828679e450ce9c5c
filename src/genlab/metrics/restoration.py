"""Restoration metrics: PSNR and SSIM on the Y channel and LPIPS, for a model and its baseline.

A restoration model (contract.Restorer: super-resolution today) undoes a known degradation, so
every clean image x gives a pair: the input `degrade(x)` and the reference x. Its output
`translate(degrade(x))` and the classical answer `baseline(degrade(x))` (bicubic upsampling)
are both compared with x, by the protocol super-resolution papers report since SRCNN:

- both images as 8-bit RGB (the model's output rounded to the nearest level, as a saved PNG);
- the luma Y of ITU-R BT.601 as MATLAB's `rgb2ycbcr` computes it, studio swing (Y in
  [16, 235] for RGB in [0, 255]):

      Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255           (R, G, B in [0, 255])

  kept as a float (BasicSR's convention; MATLAB on uint8 input would round Y as well, which
  moves PSNR by ~0.01 dB); a grey image is R = G = B;
- `crop_border` pixels (the scale) left out at every edge, where the convolutions' zero padding
  and the resampling's edge handling make the output unreliable;
- PSNR = 10 log10(255^2 / MSE) per image, averaged over images (not over pixels); an image
  restored exactly (MSE 0: a flat patch, which bicubic gets right) counts as PSNR_CAP = 100 dB
  in the mean rather than making it infinite (whole photographs never reach it);
- SSIM (Wang et al. 2004) from scikit-image's `structural_similarity`, not written again, with
  the settings of Wang et al.'s own code: an 11x11 Gaussian window of sigma 1.5
  (gaussian_weights=True, sigma=1.5), population covariances (use_sample_covariance=False),
  data_range=255, K1 = 0.01, K2 = 0.03;
- LPIPS (Zhang et al. 2018, VGG16 v0.1, genlab.metrics.vgg) on the cropped RGB images. It needs
  the pretrained VGG16 and LPIPS head files (genlab.metrics.weights). When they are missing
  (offline) LPIPS is reported as unavailable (None, with the reason), never computed with
  random weights: a random-weight "LPIPS" is another, uncalibrated distance, and a number
  under the name LPIPS would be read as the published metric.

The colour conversions are here because the protocol defines them; the super-resolution models
work in the same Y (SRCNN and ESPCN learn the Y channel only), so they import them from here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlab.errors import GenlabError

# MATLAB rgb2ycbcr for RGB in [0, 1]: YCbCr / 255 = OFFSET + MATRIX @ RGB (BT.601, studio swing)
YCBCR_OFFSET = (16.0, 128.0, 128.0)
YCBCR_MATRIX = (
    (65.481, 128.553, 24.966),
    (-37.797, -74.203, 112.0),
    (112.0, -93.786, -18.214),
)

PSNR_CAP = 100.0  # dB: what an exactly restored image adds to a mean of PSNRs
SSIM_WINDOW = 11  # pixels: the Gaussian window of sigma 1.5, truncated at 3.5 sigma

DEFINITIONS = {
    "psnr_y": "PSNR (dB) of the model's 8-bit output against the reference, on BT.601 luma Y "
    "(MATLAB rgb2ycbcr), crop_border pixels cropped at each edge, mean over the images (an exact one counts 100)",
    "ssim_y": "SSIM (skimage structural_similarity: Gaussian sigma 1.5, population covariance, "
    "data_range 255) of the model's output on the same Y, same crop, mean over the images",
    "lpips": "LPIPS v0.1 (VGG16) of the model's output on the cropped RGB images, mean over "
    "the images; None when the pretrained files are missing (see lpips_weights)",
    "psnr_y_baseline": "psnr_y of the model's classical baseline (super-resolution: bicubic)",
    "ssim_y_baseline": "ssim_y of the model's classical baseline",
    "lpips_baseline": "lpips of the model's classical baseline",
    "crop_border": "pixels left out at each edge before comparing (the scale, for SR)",
    "lpips_weights": "the LPIPS files used (sha256), or why LPIPS is unavailable",
    "images": "images compared",
}


# --- colour ---------------------------------------------------------------------------------
def _matrix(x: Tensor) -> tuple[Tensor, Tensor]:
    matrix = torch.tensor(YCBCR_MATRIX, dtype=x.dtype, device=x.device) / 255
    offset = torch.tensor(YCBCR_OFFSET, dtype=x.dtype, device=x.device).view(1, 3, 1, 1) / 255
    return matrix, offset


def rgb_to_ycbcr(x: Tensor) -> Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> YCbCr of BT.601 / MATLAB, divided by 255 (Y in [16/255,
    235/255], Cb and Cr in [16/255, 240/255])."""
    matrix, offset = _matrix(x)
    return torch.einsum("ij,bjhw->bihw", matrix, x) + offset


def ycbcr_to_rgb(x: Tensor) -> Tensor:
    """The inverse of rgb_to_ycbcr (not clamped)."""
    matrix, offset = _matrix(x)
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(matrix), x - offset)


def luma(x: Tensor) -> Tensor:
    """(B, C, H, W) in [0, 1], C = 3 (RGB) or 1 (grey: R = G = B) -> Y (B, 1, H, W) / 255."""
    if x.shape[1] == 1:
        return (YCBCR_OFFSET[0] + sum(YCBCR_MATRIX[0]) * x) / 255
    matrix, offset = _matrix(x)
    return torch.einsum("j,bjhw->bhw", matrix[0], x).unsqueeze(1) + offset[:, :1]


# --- the two numbers per image ----------------------------------------------------------------
def psnr(output: np.ndarray, reference: np.ndarray, data_range: float = 255.0) -> float:
    """10 log10(data_range^2 / MSE) in dB (float64; inf for identical images)."""
    mse = np.mean((np.asarray(output, np.float64) - np.asarray(reference, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def ssim(output: np.ndarray, reference: np.ndarray, data_range: float = 255.0) -> float:
    """SSIM of two grey images (H, W) with Wang et al.'s settings, by scikit-image."""
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        raise GenlabError("SSIM needs scikit-image: pip install 'genlab[images]'") from None
    return float(
        structural_similarity(
            np.asarray(output, np.float64),
            np.asarray(reference, np.float64),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=data_range,
        )
    )


def y_channel_255(image: Tensor, crop: int) -> np.ndarray:
    """(C, H, W) in [0, 1] -> its 8-bit version's Y in [16, 235] (H - 2 crop, W - 2 crop),
    float64."""
    levels = (image.float().clamp(0, 1) * 255).round() / 255
    y = luma(levels[None].double())[0, 0] * 255
    if crop:
        y = y[crop:-crop, crop:-crop]
    return y.cpu().numpy()


# --- LPIPS ------------------------------------------------------------------------------------
def pretrained_lpips(device: torch.device | str = "cpu") -> tuple[Any, str]:
    """(LPIPS module, its files' sha256) when the pretrained files are found, else (None, the
    reason, one line). Never downloads: `genlab evaluate` offline must not hang."""
    from genlab.metrics.vgg import load_lpips
    from genlab.metrics.weights import MissingWeights

    try:
        distance = load_lpips(download=False).to(device)
    except MissingWeights as e:  # a file that is found but wrong is still an error
        return None, f"unavailable: {str(e).splitlines()[0]}"
    return distance, str(distance.describe())


# --- the whole protocol -----------------------------------------------------------------------
@torch.no_grad()
def restoration_metrics(
    model: Any, images: list[Tensor], *, lpips: Any = "pretrained", tile: int | None = None
) -> dict[str, Any]:
    """PSNR and SSIM (Y channel, border cropped) and LPIPS of `model.translate(degrade(x))` and
    of `model.baseline(degrade(x))` against each clean image x (C, H, W) in [0, 1] of `images`.

    `model` is a contract.Restorer (in eval mode; its device is used). `lpips`: "pretrained"
    (the published LPIPS when its files are found, else reported unavailable), None (skipped),
    or an LPIPS module to use as given (a test's). `tile`: the model's translate option (None:
    its default)."""
    if not images:
        raise GenlabError("restoration metrics need at least one image")
    device = next(model.parameters()).device
    reason = "not computed"
    if isinstance(lpips, str):
        lpips, reason = pretrained_lpips(device)
    elif lpips is not None:
        reason = str(lpips.describe())
    crop = int(model.crop_border)
    smallest = SSIM_WINDOW + 2 * crop
    if min(min(image.shape[-2:]) for image in images) < smallest:
        raise GenlabError(
            f"restoration metrics need images of at least {smallest} x {smallest} pixels (the "
            f"{SSIM_WINDOW}-pixel SSIM window after a {crop}-pixel border crop)"
        )
    options = {} if tile is None else {"tile": tile}
    found: dict[str, list[float]] = {}
    for image in images:
        x = image.to(device).float()[None]  # (1, C, H, W)
        degraded = model.degrade(x)
        outputs = {
            "": model.translate(degraded, **options),
            "_baseline": model.baseline(degraded),
        }
        for suffix, y in outputs.items():
            reference = x[..., : y.shape[-2], : y.shape[-1]]  # degrade may crop to the scale
            y_out, y_ref = y_channel_255(y[0], crop), y_channel_255(reference[0], crop)
            found.setdefault(f"psnr_y{suffix}", []).append(min(psnr(y_out, y_ref), PSNR_CAP))
            found.setdefault(f"ssim_y{suffix}", []).append(ssim(y_out, y_ref))
            if lpips is not None:
                found.setdefault(f"lpips{suffix}", []).append(_lpips_of(lpips, y, reference, crop))
    result: dict[str, Any] = {k: float(np.mean(v)) for k, v in found.items()}
    if lpips is None:
        result |= {"lpips": None, "lpips_baseline": None}
    return result | {"crop_border": crop, "lpips_weights": reason, "images": len(images)}


def _lpips_of(distance: Any, output: Tensor, reference: Tensor, crop: int) -> float:
    """LPIPS of the 8-bit output against the reference, both cropped, as a float."""
    levels = (output.clamp(0, 1) * 255).round() / 255
    if crop:
        levels = levels[..., crop:-crop, crop:-crop]
        reference = reference[..., crop:-crop, crop:-crop]
    return float(distance(levels, reference).mean())
