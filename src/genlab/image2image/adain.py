"""Arbitrary style transfer in real time with adaptive instance normalisation: Huang & Belongie
2017, "Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization" (ICCV).

One network for any style. A fixed encoder f (VGG19 up to relu4_1) maps the content c and the
style s to feature maps; the AdaIN layer gives the content features the style's per-channel
statistics,

    AdaIN(x, y) = sigma(y) (x - mu(x)) / sigma(x) + mu(y)          (eq. 8)

(mu, sigma: mean and standard deviation over positions, per image and channel), and a decoder
g, trained, maps the result back to an image:

    t = AdaIN(f(c), f(s)),   T(c, s) = g(t)                          (eqs. 9-10)
    L = L_c + lambda L_s                                             (eq. 11)
    L_c = ||f(g(t)) - t||^2                                          (eq. 12, content)
    L_s = sum_{i=1..L} ||mu(phi_i(g(t))) - mu(phi_i(s))||^2
                     + ||sigma(phi_i(g(t))) - sigma(phi_i(s))||^2    (eq. 13, style)

with phi_i = relu1_1, relu2_1, relu3_1, relu4_1 of the encoder and lambda = `style_weight`.
At test time the content-style trade-off alpha interpolates the feature maps,
T(c, s, alpha) = g((1 - alpha) f(c) + alpha AdaIN(f(c), f(s))) (eq. 14: alpha = 0 decodes
the content's own features), and several styles s_k with weights w_k are interpolated as
g((1 - alpha) f(c) + alpha sum_k w_k AdaIN(f(c), f(s_k))) (eq. 15, weights normalised to sum
to 1): `translate(image, style=[s1, s2], weights=[0.3, 0.7])`.

The decoder mirrors the encoder (the paper's, section 6): each convolution in reverse order
with its channels swapped, every pooling layer replaced by nearest-neighbour upsampling,
reflection padding, a ReLU after every convolution but the last; no normalisation layers.

The encoder is a frozen copy of the VGG19 loss network's convolutions (genlab.metrics.vgg:
pretrained when the weights file is found, else its deterministic random weights) kept in the
model's state dict, so a run is self-contained: it loads with the encoder it was trained with.
Its parameters have requires_grad False and the optimizer never sees them.

Style images come in batches drawn with the global RNG from the style dataset
`style_data` (default `styles`: patches of genlab.data.styles' built-in images), at
`style_size` px; the content images are the training data (`photos`, `lfw`, `folder:PATH`).

Deviations: torchvision's VGG19 (zero padding in the encoder) rather than the paper's
normalised Caffe VGG with reflection padding; relative squared errors (style_losses.py), for
which lambda = 3 plays the paper's lambda = 10 on its absolute errors; the CPU default encoder
stops at relu3_1 (`encoder_layer`; the gpu preset and the paper: relu4_1), whose decoder learns
to reconstruct in a few hundred steps: measured on `photos` at 96 px, 200 steps (batch 8) left
the relu4_1 decoder at blurred grey blobs and the relu3_1 one with the photographs' edges
(300 steps: val content 0.18, val style 0.34 at relu3_1). The CPU defaults train on 96-px
crops in minutes (paper: 512-px MS-COCO and WikiArt images, 256-px crops, batch 8, 160k
iterations).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genlab.contract import option
from genlab.data.base import batch_inputs
from genlab.errors import GenlabError
from genlab.image2image.style_losses import (
    mean_std,
    moment_loss,
    padded_to_multiple,
    relative_error,
)
from genlab.metrics.imageops import to_rgb
from genlab.metrics.vgg import imagenet_normalize, layer_names, loss_network

TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")  # phi_i of the style loss


@dataclass
class Config:
    data_shape: tuple[int, ...] = (3, 96, 96)  # filled from the data: the content crops
    encoder_layer: str = "relu3_1"  # the deepest encoder layer (paper, gpu preset: relu4_1)
    style_data: str = "styles"  # the dataset style batches are drawn from
    style_size: int = 64  # its image_size option: the style patches' side
    style_weight: float = 3.0  # lambda

    def validate(self) -> None:
        if self.encoder_layer not in TAPS:
            raise ValueError(f"encoder_layer must be one of {', '.join(TAPS)}")
        if self.style_weight < 0:
            raise ValueError(f"style_weight must be >= 0, got {self.style_weight}")


def adain(x: Tensor, y: Tensor) -> Tensor:
    """AdaIN(x, y) = sigma(y) (x - mu(x)) / sigma(x) + mu(y), per image and channel (eq. 8);
    x (B, C, H, W), y (B or 1, C, h, w)."""
    mu_x, sigma_x = mean_std(x)
    mu_y, sigma_y = mean_std(y)
    return sigma_y * (x - mu_x) / sigma_x + mu_y


def mirrored_decoder(encoder: nn.Sequential) -> nn.Sequential:
    """The decoder that mirrors `encoder` (see the module docstring)."""
    convs = [m for m in encoder if isinstance(m, nn.Conv2d)]
    layers: list[nn.Module] = []
    for module in reversed(list(encoder)):
        if isinstance(module, nn.MaxPool2d):
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        elif isinstance(module, nn.Conv2d):
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(module.out_channels, module.in_channels, 3)]
            if module is not convs[0]:
                layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class AdaIN(nn.Module):
    """Huang & Belongie's encoder-AdaIN-decoder (contract: GenerativeModel, Translator with
    inputs image and style, option alpha). `sample(n)` stylises n seeded crops of held-out
    photographs with n seeded held-out style patches."""

    Config = Config
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    translate_inputs: ClassVar[tuple[str, ...]] = ("image", "style")

    @dataclass(frozen=True)
    class TranslateOptions:
        alpha: float = option(
            1.0, help="content-style trade-off: 0 = the content's features, 1 = full style",
            ge=0.0, le=1.0,
        )  # fmt: skip

    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 300,
        "batch_size": 8,
        "lr": 1e-3,
        "warmup_steps": 20,
        "log_every": 25,
        "eval_every": 100,
        "eval_batches": 4,
        "sample_every": 100,
        "sample_n": 16,
        "checkpoint_every": 100,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {  # the paper's 256-px crops, batch 8, lr 1e-4 (with a longer warm-up)
            "model_config": {"encoder_layer": "relu4_1", "style_size": 128},
            "train": {"steps": 40000, "batch_size": 8, "lr": 1e-4, "warmup_steps": 500},
            "data": {"options": {"image_size": 256}},
        }
    }

    def __init__(self, config: Config):
        super().__init__()
        config.validate()
        self.config = config
        names = layer_names("vgg19")
        depth = names.index(config.encoder_layer) + 1
        with torch.device("cpu"):  # a real network even when the model is built on "meta"
            vgg = loss_network("vgg19", "cpu", (config.encoder_layer,))
        self.encoder = copy.deepcopy(vgg.features[:depth]).requires_grad_(False)
        self.taps = {names.index(t): t for t in TAPS[: TAPS.index(config.encoder_layer) + 1]}
        self.decoder = mirrored_decoder(self.encoder)
        self._styles: dict[str, Any] = {}  # split -> the style dataset, loaded when first needed

    # --- encoder, AdaIN, decoder ---------------------------------------------------------------
    def encode(self, x: Tensor) -> list[Tensor]:
        """Images (B, 3, H, W) in [0, 1] -> [phi_1, ..., phi_L]: relu1_1 ... encoder_layer."""
        h, out = imagenet_normalize(x), []
        for index, layer in enumerate(self.encoder):
            h = layer(h)
            if index in self.taps:
                out.append(h)
        return out

    def style_batch(self, n: int, split: str = "train", generator: Any = None) -> Tensor:
        """n style patches (n, 3, S, S) drawn from the style dataset's `split`, uniformly with
        `generator` (None: the global RNG)."""
        if split not in self._styles:
            from genlab.data import load_dataset

            self._styles[split] = load_dataset(
                self.config.style_data, split, image_size=self.config.style_size
            )
        data = self._styles[split]
        device = generator.device if generator is not None else torch.device("cpu")
        index = torch.randint(len(data), (n,), generator=generator, device=device)
        return to_rgb(batch_inputs(data.batch(index.cpu())))

    def loss(self, batch: Any) -> dict[str, Tensor]:
        c = to_rgb(batch_inputs(batch))  # (B, 3, H, W) content images
        s = self.style_batch(len(c)).to(c.device)  # (B, 3, S, S), global RNG
        with torch.no_grad():
            f_c = self.encode(c)[-1]
            f_s = self.encode(s)
            t = adain(f_c, f_s[-1])  # the target features (B, C, H/8, W/8) for relu4_1
        f_g = self.encode(self.decoder(t))
        content = relative_error(f_g[-1], t)
        style = sum(moment_loss(g, target) for g, target in zip(f_g, f_s, strict=True))
        return {"loss": content + self.config.style_weight * style, "content": content,
                "style": style}  # fmt: skip

    # --- translation and samples -------------------------------------------------------------
    def translate(
        self,
        image: Tensor,
        *,
        style: Tensor | list[Tensor] | None = None,
        alpha: float = 1.0,
        weights: list[float] | None = None,
    ) -> Tensor:
        """Stylise images (B, 3, H, W) in [0, 1] with `style` (B or 1, 3, h, w), or with the
        interpolation of several styles (a list) by `weights` (default equal; normalised);
        `alpha` in [0, 1] trades content for style (eq. 14). Any H, W (padded inside)."""
        if style is None:
            raise GenlabError("AdaIN needs a style image (style=...)")
        styles = list(style) if isinstance(style, list | tuple) else [style]
        weights = [1.0] * len(styles) if weights is None else list(weights)
        if len(weights) != len(styles) or min(weights) < 0 or sum(weights) <= 0:
            raise GenlabError(f"{len(styles)} styles need as many weights >= 0, got {weights}")
        x, (h, w) = padded_to_multiple(to_rgb(image), 2 ** (len(self.taps) - 1))
        f_c = self.encode(x)[-1]
        t = sum(
            (v / sum(weights)) * adain(f_c, self.encode(to_rgb(s).to(x))[-1])
            for s, v in zip(styles, weights, strict=True)
        )
        t = alpha * t + (1 - alpha) * f_c
        return self.decoder(t)[..., :h, :w].clamp(0, 1)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """n seeded crops of held-out photographs, each stylised with a seeded style patch
        of the style dataset's test split."""
        from genlab.data.photos import demo_crops

        device = next(self.decoder.parameters()).device
        crops = demo_crops(n, self.config.data_shape[-1], generator=generator).to(device)
        styles = self.style_batch(n, "test", generator).to(device)
        return self.translate(crops, style=styles)
