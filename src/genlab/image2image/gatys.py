"""Neural style transfer by optimising the image: Gatys, Ecker & Bethge 2016, "Image Style
Transfer Using Convolutional Neural Networks" (CVPR); colour preservation from Gatys, Bethge,
Hertzmann & Shechtman 2016, "Preserving Color in Neural Artistic Style Transfer" (and Gatys et
al. 2017, "Controlling Perceptual Factors in Neural Style Transfer", CVPR).

Not a trained model: each stylised image is its own optimisation over the pixels x,

    x* = argmin_x  alpha L_content(x, c) + beta L_style(x, {s_k, v_k}) + gamma L_tv(x)

with the losses of style_losses.py through a fixed VGG19: the content loss at relu4_2, the
style loss on the Gram matrices of relu1_1 ... relu5_1 with per-layer weights w_l (equal by
default), and total variation for smoothness. Several styles are blended by weight v_k: their
Gram matrices are mixed, A_l = sum_k v_k G_l(s_k) / sum_k v_k, and the one style loss matches
the mixture. The image starts from the content image (quicker, and what most implementations
do) or from uniform noise (the paper's white noise), and is optimised by L-BFGS (the paper's
choice; one function evaluation per step, lr 1, no line search, as jcjohnson/neural-style) or
Adam. Pixels are not clamped during the optimisation (a clamp between L-BFGS steps breaks its
curvature pairs); the result is clamped to [0, 1].

Colour preservation (luminance-only transfer, Gatys et al. 2016b, section 2.2): the content
and style images are converted to YIQ; the style's luminance is matched to the content's mean
and standard deviation, L_s' = sigma_c / sigma_s (L_s - mu_s) + mu_c; the transfer runs on
luminance alone (grey images), and the result's Y is recombined with the content's I and Q.
The content's chroma is kept exactly: the recombined Y is clipped, pixel by pixel, to the range
in which that chroma stays inside the RGB cube (which holds the content's own Y).

Deviation: the losses are relative squared errors (see style_losses.py), so the default
weights (content 1, style 300, tv 10) suit the offline random-weight VGG19 and the published
one alike; the paper's alpha / beta ratios (1e-3, 1e-4) belong to its unnormalised losses.

`genlab stylize CONTENT --style S[:W] ...` (image2image/commands.py) runs it with a progress
bar and can write a GIF of the optimisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from genlab.errors import GenlabError
from genlab.image2image.style_losses import (
    CONTENT_LAYER,
    STYLE_LAYERS,
    content_loss,
    equal_weights,
    features,
    gram_matrix,
    style_loss,
    total_variation,
)
from genlab.metrics.vgg import loss_network

# NTSC YIQ (rows: Y, I, Q). The I and Q rows sum to 0, the Y row to 1, so the inverse's first
# column is all ones: RGB = Y + (a chroma term that depends on I and Q only).
YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ],
    dtype=torch.float64,
)


@dataclass
class Settings:
    steps: int = 300  # optimizer steps (L-BFGS: one loss evaluation each)
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    lr: float = 0.0  # 0 = the optimizer's own: 1.0 for L-BFGS, 0.02 for Adam
    init: Literal["content", "noise"] = "content"  # where x starts
    content_weight: float = 1.0  # alpha
    style_weight: float = 300.0  # beta
    tv_weight: float = 10.0  # gamma
    content_layers: tuple[str, ...] = (CONTENT_LAYER,)
    style_layers: tuple[str, ...] = STYLE_LAYERS
    layer_weights: tuple[float, ...] = ()  # w_l per style layer; () = equal (1 / L each)
    preserve_color: bool = False  # luminance-only transfer, the content's chroma kept
    arch: str = "vgg19"  # the loss network (genlab.metrics.vgg)
    frame_every: int = 0  # keep the image every this many steps for a GIF; 0 = none
    seed: int = 0  # the noise of init="noise"
    device: str = "cpu"

    def validate(self) -> None:
        if self.steps < 1:
            raise GenlabError(f"steps must be >= 1, got {self.steps}")
        if self.optimizer not in ("lbfgs", "adam"):
            raise GenlabError(f"optimizer must be lbfgs or adam, got {self.optimizer!r}")
        if self.init not in ("content", "noise"):
            raise GenlabError(f"init must be content or noise, got {self.init!r}")
        for name in ("lr", "content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise GenlabError(f"{name} must be a number >= 0, got {value}")
        if self.layer_weights and len(self.layer_weights) != len(self.style_layers):
            raise GenlabError(
                f"{len(self.layer_weights)} layer weights for {len(self.style_layers)} style layers"
            )
        if self.frame_every < 0:
            raise GenlabError(f"frame_every must be >= 0, got {self.frame_every}")


@dataclass
class History:
    """What an optimisation went through: the loss terms of every step and the frames kept."""

    losses: list[dict[str, float]] = field(default_factory=list)
    frames: list[Tensor] = field(default_factory=list)  # (3, H, W) in [0, 1]


# --- colour ---------------------------------------------------------------------------------
def rgb_to_yiq(x: Tensor) -> Tensor:
    """(..., 3, H, W) RGB -> YIQ (Y in [0, 1])."""
    return torch.einsum("ij,...jhw->...ihw", YIQ.to(x), x)


def yiq_to_rgb(x: Tensor) -> Tensor:
    return torch.einsum("ij,...jhw->...ihw", torch.linalg.inv(YIQ).to(x), x)


def match_luminance(style_y: Tensor, content_y: Tensor) -> Tensor:
    """The style's luminance shifted and scaled to the content's mean and standard deviation."""
    scale = content_y.std() / style_y.std().clamp_min(1e-6)
    return (style_y - style_y.mean()) * scale + content_y.mean()


def with_chroma(y: Tensor, content: Tensor) -> Tensor:
    """Luminance y (1, H, W) with the chroma (I, Q) of `content` (3, H, W), as RGB in [0, 1]:
    y is clipped per pixel to [max_c(-d_c), min_c(1 - d_c)], d = the chroma's RGB offset, the
    range in which that chroma stays inside the RGB cube."""
    yiq = rgb_to_yiq(content)
    offset = yiq_to_rgb(torch.cat([torch.zeros_like(y), yiq[1:]]))  # (3, H, W): RGB - Y
    low, high = (-offset).amax(0, keepdim=True), (1 - offset).amin(0, keepdim=True)
    y = torch.maximum(torch.minimum(y, high), low)
    return y + offset


# --- the optimisation -----------------------------------------------------------------------
def _prepared(
    content: Tensor, styles: Sequence[tuple[Tensor, float]], preserve_color: bool
) -> tuple[Tensor, list[tuple[Tensor, float]]]:
    """The images the transfer sees: as given, or (colour preservation) grey luminance images,
    the styles' matched to the content's luminance statistics."""
    if not preserve_color:
        return content, list(styles)
    content_y = rgb_to_yiq(content)[:1]
    grey = [
        (match_luminance(rgb_to_yiq(s)[:1], content_y).clamp(0, 1).expand(3, -1, -1), v)
        for s, v in styles
    ]
    return content_y.expand(3, -1, -1), grey


def style_targets(
    vgg, styles: Sequence[tuple[Tensor, float]], layers: Sequence[str]
) -> dict[str, Tensor]:
    """A_l = sum_k v_k G_l(s_k) / sum_k v_k: the Gram targets of the blended styles."""
    total = sum(v for _, v in styles)
    targets: dict[str, Tensor] = {}
    with torch.no_grad():
        for image, v in styles:
            f = features(vgg, image[None], layers)
            for layer in layers:
                g = gram_matrix(f[layer]) * (v / total)
                targets[layer] = targets[layer] + g if layer in targets else g
    return targets


def _check_styles(styles: Sequence[tuple[Tensor, float]]) -> None:
    if not styles:
        raise GenlabError("give at least one style")
    weights = [v for _, v in styles]
    if any(not math.isfinite(v) or v < 0 for v in weights) or sum(weights) <= 0:
        raise GenlabError(f"style weights must be >= 0 with a positive sum, got {weights}")


def stylize(
    content: Tensor,
    styles: Sequence[tuple[Tensor, float]],
    settings: Settings | None = None,
    *,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[Tensor, History]:
    """Stylise `content` (3, H, W) in [0, 1] with the blend of `styles` [(image (3, h, w),
    weight v_k), ...]; returns the image (3, H, W) in [0, 1] and the History.

    `progress(step, losses)` is called after every step with its loss terms (content, style,
    tv, loss)."""
    settings = settings or Settings()
    settings.validate()
    _check_styles(styles)
    device = torch.device(settings.device)
    layers = (*settings.content_layers, *settings.style_layers)
    vgg = loss_network(settings.arch, device, layers)
    image, blend = _prepared(content.to(device), [(s.to(device), v) for s, v in styles],
                             settings.preserve_color)  # fmt: skip
    with torch.no_grad():
        wanted = features(vgg, image[None], settings.content_layers)
    targets = style_targets(vgg, blend, settings.style_layers)
    weights = (
        dict(zip(settings.style_layers, settings.layer_weights, strict=True))
        if settings.layer_weights
        else equal_weights(settings.style_layers)
    )

    def objective(x: Tensor) -> dict[str, Tensor]:
        f = features(vgg, x, layers)
        terms = {
            "content": sum(content_loss(f[layer], wanted[layer]) for layer in wanted),
            "style": style_loss({k: gram_matrix(f[k]) for k in weights}, targets, weights),
            "tv": total_variation(x),
        }
        terms["loss"] = (
            settings.content_weight * terms["content"]
            + settings.style_weight * terms["style"]
            + settings.tv_weight * terms["tv"]
        )
        return terms

    x = _start(image, settings).requires_grad_(True)
    history = History()
    result = _optimise(
        x, objective, settings, history, progress, finish=_finisher(content, settings)
    )
    return result, history


def _start(image: Tensor, settings: Settings) -> Tensor:
    """x at step 0, (1, 3, H, W): the (prepared) content image, or seeded uniform noise."""
    if settings.init == "content":
        return image[None].clone()
    generator = torch.Generator().manual_seed(settings.seed)
    return torch.rand((1, *image.shape), generator=generator).to(image.device)


def _finisher(content: Tensor, settings: Settings) -> Callable[[Tensor], Tensor]:
    """x (1, 3, H, W) -> the image (3, H, W) in [0, 1] it stands for (on the CPU)."""

    def finish(x: Tensor) -> Tensor:
        x = x.detach()[0].cpu()
        if not settings.preserve_color:
            return x.clamp(0, 1)
        y = rgb_to_yiq(x.clamp(0, 1))[:1]
        return with_chroma(y, content.cpu()).clamp(0, 1)

    return finish


def _optimise(x, objective, settings: Settings, history: History, progress, *, finish):
    """Run the optimizer for settings.steps steps; returns finish(x)."""
    if settings.optimizer == "lbfgs":
        optimizer = torch.optim.LBFGS([x], lr=settings.lr or 1.0, max_iter=1, history_size=50)
    else:
        optimizer = torch.optim.Adam([x], lr=settings.lr or 0.02)
    recorded: dict[str, float] = {}  # the loss terms of the step's evaluation

    def closure() -> Tensor:
        optimizer.zero_grad()
        terms = objective(x)
        terms["loss"].backward()
        recorded.update({k: float(v.detach()) for k, v in terms.items()})
        return terms["loss"]

    for step in range(1, settings.steps + 1):
        optimizer.step(closure)
        if not math.isfinite(recorded["loss"]):
            raise GenlabError(f"the loss became {recorded['loss']} at step {step}; lower the lr")
        history.losses.append(dict(recorded))
        if settings.frame_every and (step % settings.frame_every == 0 or step == 1):
            history.frames.append(finish(x))
        if progress is not None:
            progress(step, recorded)
    return finish(x)
