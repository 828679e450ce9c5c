"""Conditional GAN: p(x | y) for a class label y.

Mirza & Osindero (2014, "Conditional Generative Adversarial Nets") feed y to both players by
concatenation. Miyato & Koyama (2018, "cGANs with Projection Discriminator") showed that a
discriminator whose logit is

    D(x, y) = psi(phi(x)) + embed(y)^T phi(x)                      (their eq. 3)

(phi: the convolutional features, psi: a linear head, embed: a learned class embedding) matches
the form of the optimal discriminator's log-density ratio and conditions much better than
concatenating y to the input. Both are here (`conditioning`):

- generator: z (B, z_dim) concatenated with a learned class embedding (B, embed_dim), then the
  DCGAN generator (genlab.gan.dcgan); same for both conditionings;
- "projection": the DCGAN discriminator's features phi(x) and the projection term above;
- "concat": y as K one-hot planes concatenated to the image channels (to the vector for 2-D data).

Defaults follow the projection paper: hinge loss, spectral normalisation in D, no D batch norm,
Adam(2e-4, beta1 0.5) here (the paper's beta1 is 0). Fakes are drawn for the labels of the real
batch, so both players see the data's class balance. `sample(n, labels=...)` takes one label,
a sequence of n labels, or none (classes cycle 0, 1, ..., K-1 over the rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.contract import class_labels, option
from genlab.data.base import batch_inputs, batch_labels
from genlab.gan import losses
from genlab.gan.dcgan import (
    GPU_PRESET,
    build_discriminator,
    build_generator,
    check_data_shape,
    data_kind,
    dcgan_init,
    device_of,
    normal_latent,
    to_data_space,
    to_model_space,
)
from genlab.gan.losses import Tricks


@dataclass
class CGANConfig:
    data_shape: tuple[int, ...] = (1, 28, 28)  # (C, H, W) images or (D,) vectors; from the data
    num_classes: int = 10  # K; from the data
    z_dim: int = 100
    embed_dim: int = 32  # the generator's class embedding, concatenated to z
    g_width: int = 64
    d_width: int = 64
    hidden: int = 128  # MLP width, for vector data
    mlp_layers: int = 3
    conditioning: Literal["projection", "concat"] = "projection"  # how D sees the label
    d_norm: Literal["batch", "layer", "none"] = "none"
    spectral_norm: bool = True
    loss: str = "hinge"

    def validate(self) -> None:
        check_data_shape(self.data_shape)
        losses.check_loss(self.loss)
        if self.num_classes < 2:
            raise ValueError(
                f"the conditional GAN needs labelled data with >= 2 classes, got {self.num_classes}"
            )
        if min(self.z_dim, self.embed_dim, self.g_width, self.d_width, self.hidden) < 1:
            raise ValueError("z_dim, embed_dim, g_width, d_width and hidden must be >= 1")
        if self.conditioning not in ("projection", "concat"):
            raise ValueError(
                f"conditioning must be projection or concat, not {self.conditioning!r}"
            )


class ConditionalGenerator(nn.Module):
    def __init__(self, config: CGANConfig):
        super().__init__()
        self.embed = nn.Embedding(config.num_classes, config.embed_dim)
        self.net = build_generator(config, z_in=config.z_dim + config.embed_dim)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.net(torch.cat([z, self.embed(y)], dim=1))  # (B, C, H, W) in [-1, 1]


class ConditionalDiscriminator(nn.Module):
    def __init__(self, config: CGANConfig):
        super().__init__()
        self.conditioning, self.num_classes = config.conditioning, config.num_classes
        extra = config.num_classes if config.conditioning == "concat" else 0
        self.net = build_discriminator(config, extra_channels=extra)
        if config.conditioning == "projection":
            self.embed = nn.Embedding(config.num_classes, self.net.feature_dim)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if self.conditioning == "concat":
            onehot = F.one_hot(y, self.num_classes).to(x.dtype)  # (B, K)
            if x.dim() == 4:
                onehot = onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])  # (B, K, H, W)
            return self.net(torch.cat([x, onehot], dim=1))
        phi = self.net.features(x)  # (B, F)
        return self.net.head(phi).squeeze(1) + (self.embed(y) * phi).sum(1)  # eq. 3


@dataclass(frozen=True)
class CGANSampleOptions:
    """What `sample` takes besides n and the generator (contract.HasSampleOptions)."""

    label: int | None = option(
        None,
        help="the class of every sample (default: the classes cycle over the samples)",
        ge=0,
        keyword="labels",
    )


class CGAN(nn.Module):
    Config = CGANConfig
    SampleOptions: ClassVar[type] = CGANSampleOptions
    trainer = "genlab.gan.train"
    data_kinds = ("image", "vector")  # DataSpec kinds (contract.py): MLPs for vectors
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 3000,
        "batch_size": 64,
        "lr_g": 2e-4,
        "lr_d": 2e-4,
        "betas": (0.5, 0.999),
        "ema_decay": 0.999,
    }

    presets: ClassVar[dict[str, dict[str, Any]]] = {"gpu": GPU_PRESET}  # --preset gpu

    def __init__(self, config: CGANConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.generator = ConditionalGenerator(config)
        self.discriminator = ConditionalDiscriminator(config)
        dcgan_init(self)

    @property
    def sample_kind(self) -> str:  # contract.sample_kind: it trains on images and vectors
        return data_kind(self.config.data_shape)

    # --- sampling -----------------------------------------------------------------------------
    def labels_for(self, n: int, labels: Any = None) -> Tensor:
        """None -> 0, 1, ..., K-1, 0, ...; an int -> n copies; a sequence -> itself (length n)."""
        device = next(self.parameters()).device
        return class_labels(n, labels, self.config.num_classes, device)

    def sample_latent(self, n: int, *, generator: Any = None) -> Tensor:
        return normal_latent(n, self.config.z_dim, generator, device_of(self.generator))

    def generate(self, z: Tensor, labels: Any = None) -> Tensor:
        """Images of z for `labels` (default: classes cycling over the rows)."""
        return to_data_space(
            self.generator(z, self.labels_for(len(z), labels)), self.config.data_shape
        )

    def sample(self, n: int, *, generator: Any = None, labels: Any = None) -> Tensor:
        return self.generate(self.sample_latent(n, generator=generator), labels)

    def decode_latent(self, z: Tensor, labels: Any = None) -> Tensor:  # LatentSampler
        """Row by row only with given labels: the default labels cycle with the row index."""
        return self.generate(z, labels)

    # --- the adversarial losses ---------------------------------------------------------------
    def _labelled(self, batch: Any) -> tuple[Tensor, Tensor]:
        y = batch_labels(batch)
        if y is None:
            raise ValueError("the conditional GAN trains on labelled batches (x, y)")
        return to_model_space(batch_inputs(batch), self.config.data_shape), y

    def discriminator_loss(self, batch: Any, tricks: Tricks, step: int) -> dict[str, Tensor]:
        real, y = self._labelled(batch)
        with torch.no_grad():
            fake = self.generator(self.sample_latent(len(real)), y)
        r = self.discriminator(tricks(real), y)
        f = self.discriminator(tricks(fake), y)
        return {
            "loss": losses.discriminator_loss(self.config.loss, r, f, tricks.label_smoothing),
            "d_real": r.detach().mean(),
            "d_fake": f.detach().mean(),
        }

    def generator_loss(self, batch: Any, tricks: Tricks, step: int) -> dict[str, Tensor]:
        _, y = self._labelled(batch)
        fake = self.generator(self.sample_latent(len(y)), y)
        return {
            "loss": losses.generator_loss(self.config.loss, self.discriminator(tricks(fake), y))
        }

    def discriminator_won(self, d_loss: float) -> bool:
        """D's loss ~0 (the loop's collapse test; never for the wasserstein loss)."""
        return losses.collapsed(self.config.loss, d_loss)

    def loss(self, batch: Any) -> dict[str, Tensor]:
        real, y = self._labelled(batch)
        fake = self.generator(self.sample_latent(len(real)), y)
        r, f = self.discriminator(real, y), self.discriminator(fake, y)
        return losses.evaluation_losses(self.config.loss, r, f)

    # --- figures ------------------------------------------------------------------------------
    @torch.no_grad()
    def visualize(self, data: Any, out_dir: Path, *, generator: Any) -> list[Path]:
        """A class grid: row k holds 10 samples of class k (one z per column); for vectors, a
        scatter plot of them all."""
        from genlab.imaging import save_image
        from genlab.writers import write_samples

        k, columns = self.config.num_classes, 10
        z = self.sample_latent(columns, generator=generator).repeat(k, 1)  # (K * 10, z_dim)
        labels = torch.arange(k).repeat_interleave(columns)
        samples = self.generate(z, labels)
        path = Path(out_dir) / "class_grid.png"
        if self.sample_kind == "image":
            save_image(samples, path, nrow=columns, scale=2)
        else:
            write_samples(samples, path, kind=self.sample_kind)
        return [path]
