"""Fast style transfer: Johnson, Alahi & Fei-Fei 2016, "Perceptual Losses for Real-Time Style
Transfer and Super-Resolution" (ECCV), with instance normalisation (Ulyanov, Vedaldi &
Lempitsky 2016, "Instance Normalization: The Missing Ingredient for Fast Stylization").

A feed-forward image transformation network y = f_W(x) is trained, for ONE style image s, on
many content images x to minimise the perceptual losses of Gatys et al. through a fixed VGG
(the loss network, genlab.metrics.vgg.loss_network, never trained nor saved):

    L(x) = alpha L_content(phi(y), phi(x)) + beta L_style(G(phi(y)), G(phi(s))) + gamma L_tv(y)

with the content loss at relu2_2 and the style loss on the Gram matrices of relu1_2, relu2_2,
relu3_3, relu4_3 (the paper's layers; style_losses.py has the definitions). After training,
stylising an image is one forward pass.

The network (the paper's supplementary, Table 1), widths as multiples of `width` (paper: 32):

    9x9 conv, w          -> IN -> ReLU                         (B, w, H, W)
    3x3 conv stride 2, 2w -> IN -> ReLU                        (B, 2w, H/2, W/2)
    3x3 conv stride 2, 4w -> IN -> ReLU                        (B, 4w, H/4, W/4)
    `blocks` residual blocks: x + IN(conv(ReLU(IN(conv(x)))))  (paper: 5)
    nearest upsample x2, 3x3 conv, 2w -> IN -> ReLU            (B, 2w, H/2, W/2)
    nearest upsample x2, 3x3 conv, w -> IN -> ReLU             (B, w, H, W)
    9x9 conv, 3 -> (tanh + 1) / 2                              (B, 3, H, W) in [0, 1]

Instance normalisation IN(x) = gamma (x - mu(x)) / sigma(x) + beta, with mu and sigma per image
and channel over positions, replaces the paper's batch normalisation (Ulyanov et al.: it removes
the content image's contrast and gives visibly better stylisations).

Deviations: upsampling is nearest-neighbour then convolution (Odena et al. 2016; the PyTorch
example's choice) rather than fractionally strided convolution, which leaves checkerboard
artefacts; padding is by reflection; the loss network is VGG19 by default (its relu layers of
the same names; one weights file serves the three methods), `-o loss_network=vgg16` is the
paper's; the losses are relative (style_losses.py), with beta = 50 (Gatys' optimisation uses
300: trained 300 steps with 300, the mosaic network's outputs kept almost nothing of the
photographs, with 50 their edges and shapes stay); the defaults width 16, 3 residual blocks,
96-px crops train on a 2-core CPU in minutes.

Flat content crops (pixel standard deviation below 0.02: black sky, a blank page) are replaced by their
neighbour in the batch, so they stay out of the loss: they have no content to keep, and through ten instance norms their gradient is
multiplied by about 1/sqrt(eps) = 316 per layer. Measured: a near-black crop of the Hubble
photograph (std 0.003) in a batch of 8 gave a gradient norm of 2.8e18 at step 32 of
`genlab train fast-style --data photos`, whose square overflowed fp32 and stopped the run.

The style image is the model's run asset (contract.RunAssets): `-o style=NAME_OR_PATH` names a
built-in style (genlab.data.styles) or a file; it is copied into the run folder as style.png, so
the run is self-contained (evaluation and loading read that copy).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genlab.data.base import DataSpec, batch_inputs
from genlab.errors import GenlabError
from genlab.image2image.style_losses import (
    content_loss,
    equal_weights,
    features,
    gram_matrix,
    padded_to_multiple,
    style_loss,
    total_variation,
)
from genlab.metrics.imageops import to_rgb
from genlab.metrics.vgg import loss_network

STYLE_FILE = "style.png"  # the run asset
FLAT = 0.02  # content crops with a smaller pixel std are replaced by a neighbour


@dataclass
class Config:
    data_shape: tuple[int, ...] = (3, 96, 96)  # filled from the data: the training crops
    style: str = "mosaic"  # a built-in style (genlab.data.styles) or an image file
    style_size: int = 256  # the style image's longer side (sets the scale of its texture)
    width: int = 16  # channels after the first convolution (paper: 32)
    blocks: int = 3  # residual blocks (paper: 5)
    loss_network: str = "vgg19"  # vgg19 or vgg16 (the paper's)
    content_layer: str = "relu2_2"
    style_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    content_weight: float = 1.0  # alpha
    style_weight: float = 50.0  # beta (Gatys: 300; a network trades content for style more)
    tv_weight: float = 10.0  # gamma

    def validate(self) -> None:
        if self.width < 1 or self.blocks < 0 or self.style_size < 8:
            raise ValueError("width must be >= 1, blocks >= 0 and style_size >= 8")
        if self.loss_network not in ("vgg16", "vgg19"):
            raise ValueError(f"loss_network must be vgg16 or vgg19, got {self.loss_network!r}")
        if min(self.content_weight, self.style_weight, self.tv_weight) < 0:
            raise ValueError("the loss weights must be >= 0")


# --- the transformation network ----------------------------------------------------------------
class ConvLayer(nn.Sequential):
    """Reflection padding, a convolution, then (optionally) instance norm and ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, *, act: bool = True):
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(kernel // 2),
            nn.Conv2d(c_in, c_out, kernel, stride),
        ]
        if act:
            layers += [nn.InstanceNorm2d(c_out, affine=True), nn.ReLU()]
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """x + IN(conv(ReLU(IN(conv(x))))), the paper's residual block (no ReLU after the sum)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            ConvLayer(channels, channels, 3),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class UpsampleConv(nn.Sequential):
    """Nearest-neighbour upsampling by 2, then a ConvLayer (no checkerboard artefacts)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), ConvLayer(c_in, c_out, 3))


class TransformerNet(nn.Module):
    """Images (B, 3, H, W) in [0, 1], H and W multiples of 4 -> stylised (B, 3, H, W) in [0, 1]."""

    def __init__(self, width: int, blocks: int):
        super().__init__()
        w = width
        self.down = nn.Sequential(
            ConvLayer(3, w, 9), ConvLayer(w, 2 * w, 3, 2), ConvLayer(2 * w, 4 * w, 3, 2)
        )
        self.residual = nn.Sequential(*(ResidualBlock(4 * w) for _ in range(blocks)))
        self.up = nn.Sequential(UpsampleConv(4 * w, 2 * w), UpsampleConv(2 * w, w))
        self.out = ConvLayer(w, 3, 9, act=False)

    def forward(self, x: Tensor) -> Tensor:
        h = self.residual(self.down(x))  # (B, 4w, H/4, W/4)
        return (torch.tanh(self.out(self.up(h))) + 1) / 2  # the paper's scaled tanh, to [0, 1]


# --- the model ---------------------------------------------------------------------------------
class FastStyle(nn.Module):
    """Johnson et al.'s transformation network for one style (contract: GenerativeModel,
    Translator, RunAssets). `loss(batch)` trains it on content images; `translate(image)`
    stylises any image; `sample(n)` stylises n seeded crops of held-out photographs."""

    Config = Config
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    translate_inputs: ClassVar[tuple[str, ...]] = ("image",)

    @dataclass(frozen=True)
    class TranslateOptions:
        """One forward pass: no options."""

    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 300,
        "batch_size": 8,
        "lr": 2e-3,
        "warmup_steps": 20,
        "log_every": 25,
        "eval_every": 100,
        "eval_batches": 4,
        "sample_every": 100,
        "sample_n": 16,
        "checkpoint_every": 100,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {  # the paper's network on 256-px crops
            "model_config": {"width": 32, "blocks": 5, "style_size": 512},
            "train": {"steps": 20000, "batch_size": 8, "lr": 1e-3, "warmup_steps": 500},
            "data": {"options": {"image_size": 256}},
        }
    }

    def __init__(self, config: Config):
        super().__init__()
        config.validate()
        self.config = config
        self.transformer = TransformerNet(config.width, config.blocks)
        self.style_picture: Tensor | None = None  # (3, h, w) in [0, 1]; read when first needed
        self._targets: tuple[torch.device, dict[str, Tensor]] | None = None

    # --- the style image: a run asset (contract.RunAssets) ------------------------------------
    def _set_style(self, picture: Tensor) -> None:
        self.style_picture, self._targets = picture, None

    def style(self) -> Tensor:
        """The style image (3, h, w): the run's copy, else `config.style` read now."""
        if self.style_picture is None:
            from genlab.data.styles import style_image

            self._set_style(style_image(self.config.style, self.config.style_size))
        assert self.style_picture is not None
        return self.style_picture

    def bind_data(self, spec: DataSpec) -> None:
        """A new (or resumed) run: read the style image `config.style` names."""
        from genlab.data.styles import style_image

        self._set_style(style_image(self.config.style, self.config.style_size))

    def save_assets(self, folder: Path) -> None:
        from genlab.imaging import save_image

        save_image(self.style(), Path(folder) / STYLE_FILE)

    def load_assets(self, folder: Path) -> None:
        from genlab.data.photos import read_image

        path = Path(folder) / STYLE_FILE
        if path.is_file():
            self._set_style(read_image(path, channels=3))

    @classmethod
    def data_options(cls, folder: Path) -> dict[str, Any]:
        """Content images need no option to fit the run; the folder must hold its style."""
        if not (Path(folder) / STYLE_FILE).is_file():
            raise GenlabError(f"{folder} has no {STYLE_FILE}: not a fast-style run folder")
        return {}

    # --- the losses ------------------------------------------------------------------------------
    def _style_targets(self, vgg) -> dict[str, Tensor]:
        """The Gram matrices of the style image (1, C, C) per style layer, cached per device."""
        device = next(self.parameters()).device
        if self._targets is None or self._targets[0] != device:
            with torch.no_grad():
                f = features(vgg, self.style()[None].to(device), self.config.style_layers)
            self._targets = (device, {k: gram_matrix(v) for k, v in f.items()})
        return self._targets[1]

    def loss(self, batch: Any) -> dict[str, Tensor]:
        cfg = self.config
        x = to_rgb(batch_inputs(batch))  # (B, 3, H, W) content images in [0, 1]
        textured = (x.std((1, 2, 3)) >= FLAT).view(-1, 1, 1, 1)
        # a flat crop is replaced by its neighbour in the batch (module docstring); a select,
        # not a boolean index, so the batch keeps its shape and the loss compiles to one graph
        x = torch.where(textured, x, x.roll(1, 0))
        layers = (cfg.content_layer, *cfg.style_layers)
        vgg = loss_network(cfg.loss_network, x.device, layers)
        y = self.transformer(x)  # (B, 3, H, W)
        with torch.no_grad():
            wanted = features(vgg, x, (cfg.content_layer,))[cfg.content_layer]
        f = features(vgg, y, layers)
        weights = equal_weights(cfg.style_layers)
        grams = {layer: gram_matrix(f[layer]) for layer in cfg.style_layers}
        terms = {
            "content": content_loss(f[cfg.content_layer], wanted),
            "style": style_loss(grams, self._style_targets(vgg), weights),
            "tv": total_variation(y),
        }
        terms["loss"] = (
            cfg.content_weight * terms["content"]
            + cfg.style_weight * terms["style"]
            + cfg.tv_weight * terms["tv"]
        )
        return terms

    # --- translation and samples -------------------------------------------------------------
    def translate(self, image: Tensor, **options: Any) -> Tensor:
        """Stylise images (B, 3, H, W) in [0, 1] of any size (padded to multiples of 4)."""
        if options:
            raise ValueError(f"fast-style takes no options, got {', '.join(options)}")
        x, (h, w) = padded_to_multiple(to_rgb(image), 4)
        return self.transformer(x)[..., :h, :w]

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """n seeded crops of held-out photographs (genlab.data.photos.demo_crops), stylised."""
        from genlab.data.photos import demo_crops

        crops = demo_crops(n, self.config.data_shape[-1], generator=generator)
        return self.translate(crops.to(next(self.parameters()).device))
