"""DCGAN (Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks"), and the networks WGAN and WGAN-GP reuse.

The paper's architecture guidelines, followed here:
- no pooling: the discriminator downsamples with strided convolutions, the generator upsamples
  with fractionally-strided (transposed) convolutions, kernel 4, stride 2, padding 1;
- batch norm in both networks, except the generator's output and the discriminator's input layer;
- ReLU in the generator with tanh at the output; LeakyReLU(0.2) in the discriminator;
- weights from N(0, 0.02), batch-norm gains from N(1, 0.02); Adam lr 2e-4, beta1 0.5.

The generator projects z to a (4 w) x s0 x s0 map (s0 = 4..7, e.g. 7 for 28x28 MNIST, 4 for
32x32) and doubles the resolution k times while halving the width: 28 -> two transposed convs,
32 -> three. The discriminator mirrors it and ends with a linear layer to one logit (the paper
uses a sigmoid; here D returns the logit and the loss applies it, which is the same objective
computed stably). For 2-D toy data (data_shape (2,)) both networks are MLPs, the usual test bed
for mode collapse on 8 Gaussians.

WGAN, WGAN-GP and the conditional GAN hold these networks too: each builds its players with
`build_generator` / `build_discriminator` (and `dcgan_init`) and samples with `normal_latent` /
`to_data_space`; none inherits from DCGAN.

Deviation: widths are set for a 2-core CPU (base width 64 at 28x28) rather than the paper's
1024-channel 64x64 generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from genlab.data.base import batch_inputs
from genlab.gan import losses
from genlab.gan.losses import Tricks


@dataclass
class DCGANConfig:
    data_shape: tuple[int, ...] = (1, 28, 28)  # (C, H, W) images or (D,) vectors; from the data
    z_dim: int = 100  # the paper's 100-d uniform noise; here N(0, I)
    g_width: int = 64  # generator channels at the last hidden resolution (doubled per step down)
    d_width: int = 64  # discriminator channels at the first layer (doubled per step down)
    hidden: int = 128  # MLP width, for vector data
    mlp_layers: int = 3  # hidden layers of the MLPs, for vector data
    d_norm: Literal["batch", "layer", "none"] = "batch"  # discriminator normalisation
    spectral_norm: bool = False  # spectral normalisation of every D layer (Miyato et al. 2018)
    loss: str = "non-saturating"  # minimax | non-saturating | hinge | wasserstein
    r1_gamma: float = 0.0  # R1 penalty weight on real data (0 = off)

    def validate(self) -> None:
        losses.check_loss(self.loss)
        check_data_shape(self.data_shape)
        if min(self.z_dim, self.g_width, self.d_width, self.hidden, self.mlp_layers) < 1:
            raise ValueError("z_dim, g_width, d_width, hidden and mlp_layers must be >= 1")
        if self.d_norm not in ("batch", "layer", "none"):
            raise ValueError(f"d_norm must be batch, layer or none, got {self.d_norm!r}")
        if self.r1_gamma < 0:
            raise ValueError(f"r1_gamma must be >= 0, got {self.r1_gamma}")


# --- shapes and spaces ------------------------------------------------------------------------
def check_data_shape(shape: tuple[int, ...]) -> None:
    if len(shape) == 3:
        upsamplings(shape[1])  # raises for sizes it cannot build
        if shape[1] != shape[2]:
            raise ValueError(f"images must be square, got {shape[1]}x{shape[2]}")
    elif len(shape) != 1:
        raise ValueError(f"data_shape must be (C, H, W) or (D,), got {shape}")


def upsamplings(size: int) -> int:
    """How many stride-2 steps lead from a 4..7-pixel map to `size` (28 -> 2, 32 -> 3, 8 -> 1)."""
    k = 0
    while size % 2 ** (k + 1) == 0 and size // 2 ** (k + 1) >= 4:
        k += 1
    if not 4 <= size // 2**k <= 7 or k == 0:
        raise ValueError(f"image size {size} is not s0 * 2^k with s0 in 4..7, k >= 1")
    return k


def to_model_space(x: Tensor, data_shape: tuple[int, ...]) -> Tensor:
    """Data in [0, 1] -> [-1, 1] for images; vectors unchanged."""
    return x * 2 - 1 if len(data_shape) == 3 else x


def to_data_space(x: Tensor, data_shape: tuple[int, ...]) -> Tensor:
    return ((x + 1) / 2).clamp(0, 1) if len(data_shape) == 3 else x


def data_kind(data_shape: tuple[int, ...]) -> str:
    """The DataSpec kind a GAN of this data shape samples: (D,) vectors or (C, H, W) images."""
    return "vector" if len(data_shape) == 1 else "image"


def device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def normal_latent(n: int, z_dim: int, generator: Any, device: torch.device) -> Tensor:
    """z ~ N(0, I), (n, z_dim), drawn from `generator` (or the global RNG)."""
    return torch.randn(n, z_dim, generator=generator, device=device)


def dcgan_init(module: nn.Module) -> None:
    """The paper's init: conv/linear weights N(0, 0.02), batch-norm gains N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


# --- networks ---------------------------------------------------------------------------------
class ConvGenerator(nn.Module):
    """z (B, z_in) -> linear -> (B, w 2^(k-1), s0, s0) -> k transposed convs -> (B, C, H, W)."""

    def __init__(self, z_in: int, data_shape: tuple[int, ...], width: int):
        super().__init__()
        channels, size = data_shape[0], data_shape[1]
        k = upsamplings(size)
        self.s0, self.c0 = size // 2**k, width * 2 ** (k - 1)
        self.project = nn.Sequential(
            nn.Linear(z_in, self.c0 * self.s0 * self.s0, bias=False),
            nn.BatchNorm1d(self.c0 * self.s0 * self.s0),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        c = self.c0
        for _ in range(k - 1):
            layers += [
                nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c // 2),
                nn.ReLU(),
            ]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        h = self.project(z).view(-1, self.c0, self.s0, self.s0)  # (B, c0, s0, s0)
        return self.body(h)  # (B, C, H, W) in [-1, 1]


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # layer norm over (C, H, W): WGAN-GP's replacement for batch norm
        return nn.GroupNorm(1, channels)
    return nn.Identity()


class ConvDiscriminator(nn.Module):
    """x (B, C_in, H, W) -> k strided convs -> features (B, F) -> logit (B,).

    `features(x)` is exposed for the projection discriminator of the conditional GAN.
    """

    def __init__(self, in_channels: int, size: int, width: int, norm: str, spectral: bool = False):
        super().__init__()
        k = upsamplings(size)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for _ in range(k - 1):
            layers += [nn.Conv2d(c, c * 2, 4, 2, 1), _norm(norm, c * 2), nn.LeakyReLU(0.2)]
            c *= 2
        self.body = nn.Sequential(*layers)
        self.feature_dim = c * (size // 2**k) ** 2
        self.head = nn.Linear(self.feature_dim, 1)
        if spectral:
            apply_spectral_norm(self)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x).flatten(1)  # (B, F)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).squeeze(1)  # (B,)


class MLPGenerator(nn.Module):
    def __init__(self, z_in: int, out_dim: int, hidden: int, layers: int):
        super().__init__()
        blocks: list[nn.Module] = []
        d = z_in
        for _ in range(layers):
            blocks += [nn.Linear(d, hidden), nn.ReLU()]
            d = hidden
        self.net = nn.Sequential(*blocks, nn.Linear(d, out_dim))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)  # (B, D), unbounded


class MLPDiscriminator(nn.Module):
    def __init__(self, in_dim: int, hidden: int, layers: int, spectral: bool = False):
        super().__init__()
        blocks: list[nn.Module] = []
        d = in_dim
        for _ in range(layers):
            blocks += [nn.Linear(d, hidden), nn.LeakyReLU(0.2)]
            d = hidden
        self.body = nn.Sequential(*blocks)
        self.feature_dim = d
        self.head = nn.Linear(d, 1)
        if spectral:
            apply_spectral_norm(self)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).squeeze(1)  # (B,)


def apply_spectral_norm(module: nn.Module) -> None:
    """W <- W / sigma_max(W) on every conv/linear layer (one power iteration per forward)."""
    from torch.nn.utils.parametrizations import spectral_norm

    for name, child in list(module.named_children()):
        if isinstance(child, nn.Conv2d | nn.Linear):
            setattr(module, name, spectral_norm(child))
        else:
            apply_spectral_norm(child)


def build_generator(config: Any, z_in: int | None = None) -> nn.Module:
    z_in = config.z_dim if z_in is None else z_in
    if len(config.data_shape) == 1:
        return MLPGenerator(z_in, config.data_shape[0], config.hidden, config.mlp_layers)
    return ConvGenerator(z_in, config.data_shape, config.g_width)


def build_discriminator(config: Any, extra_channels: int = 0) -> nn.Module:
    if len(config.data_shape) == 1:
        return MLPDiscriminator(
            config.data_shape[0] + extra_channels,
            config.hidden,
            config.mlp_layers,
            config.spectral_norm,
        )
    c, size = config.data_shape[0], config.data_shape[1]
    return ConvDiscriminator(
        c + extra_channels, size, config.d_width, config.d_norm, config.spectral_norm
    )


GPU_PRESET = {  # wider nets, bigger batches, longer runs: genlab train ... --preset gpu
    "model_config": {"g_width": 128, "d_width": 128},
    "train": {"batch_size": 128, "steps": 20000},
}


# --- the model --------------------------------------------------------------------------------
class NormalLatentSampling:
    """The sampling DCGAN, WGAN and WGAN-GP share (a mixin for the models that hold a
    `generator` network and a config with `z_dim` and `data_shape`): z ~ N(0, I), decoded row
    by row, so each is a contract.LatentSampler (the server batches it) and a LatentGenerator
    (interpolation, PPL); `sample_kind` follows the data it was built for (images or vectors)."""

    config: Any
    generator: nn.Module

    @property
    def sample_kind(self) -> str:  # contract.sample_kind: it trains on images and vectors
        return data_kind(self.config.data_shape)

    def sample_latent(self, n: int, *, generator: Any = None) -> Tensor:
        return normal_latent(n, self.config.z_dim, generator, device_of(self.generator))

    def decode_latent(self, z: Tensor) -> Tensor:
        return to_data_space(self.generator(z), self.config.data_shape)

    def generate(self, z: Tensor) -> Tensor:
        return self.decode_latent(z)

    def sample(self, n: int, *, generator: Any = None) -> Tensor:
        return self.decode_latent(self.sample_latent(n, generator=generator))


class DCGAN(NormalLatentSampling, nn.Module):
    Config = DCGANConfig
    trainer = "genlab.gan.train"
    data_kinds = ("image", "vector")  # DataSpec kinds (contract.py): MLPs for vectors
    # mnist-5k: 11.3 minutes on one CPU core, FID (digits) 103.9 (docs/benchmarks.md)
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 3000,
        "batch_size": 64,
        "lr_g": 2e-4,
        "lr_d": 2e-4,
        "betas": (0.5, 0.999),
        "ema_decay": 0.999,
    }

    presets: ClassVar[dict[str, dict[str, Any]]] = {"gpu": GPU_PRESET}  # --preset gpu

    def __init__(self, config: DCGANConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.generator = build_generator(config)
        self.discriminator = build_discriminator(config)
        dcgan_init(self)

    # --- the adversarial losses ---------------------------------------------------------------
    def discriminator_loss(self, batch: Any, tricks: Tricks, step: int) -> dict[str, Tensor]:
        real = to_model_space(batch_inputs(batch), self.config.data_shape)
        with torch.no_grad():
            fake = self.generator(self.sample_latent(len(real)))
        if self.config.r1_gamma > 0:
            real = real.detach().requires_grad_(True)
        r_logits = self.discriminator(tricks(real))
        f_logits = self.discriminator(tricks(fake))
        out = {
            "loss": losses.discriminator_loss(
                self.config.loss, r_logits, f_logits, tricks.label_smoothing
            ),
            "d_real": r_logits.detach().mean(),
            "d_fake": f_logits.detach().mean(),
        }
        if self.config.r1_gamma > 0:
            out["r1"] = losses.r1_penalty(r_logits, real)
            out["loss"] = out["loss"] + self.config.r1_gamma / 2 * out["r1"]
        return out

    def generator_loss(self, batch: Any, tricks: Tricks, step: int) -> dict[str, Tensor]:
        fake = self.generator(self.sample_latent(len(batch_inputs(batch))))
        f_logits = self.discriminator(tricks(fake))
        return {"loss": losses.generator_loss(self.config.loss, f_logits)}

    def discriminator_won(self, d_loss: float) -> bool:
        """D's loss ~0 (the loop's collapse test; never for the wasserstein loss)."""
        return losses.collapsed(self.config.loss, d_loss)

    def loss(self, batch: Any) -> dict[str, Tensor]:
        """Evaluation: D and G losses on a batch and fresh fakes (no penalties, no tricks)."""
        real = to_model_space(batch_inputs(batch), self.config.data_shape)
        fake = self.generator(self.sample_latent(len(real)))
        return losses.evaluation_losses(
            self.config.loss, self.discriminator(real), self.discriminator(fake)
        )
