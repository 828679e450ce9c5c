"""WGAN-GP (Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville 2017, "Improved Training of
Wasserstein GANs").

Weight clipping makes the WGAN critic either too simple or explode; the paper enforces the
1-Lipschitz constraint softly instead, with a penalty on the critic's gradient norm at points
x_hat on straight lines between real and generated samples:

    L_D = E[D(G(z))] - E[D(x)] + lambda * E_{x_hat}[(||grad D(x_hat)||_2 - 1)^2]
    x_hat = a x + (1 - a) G(z),  a ~ U[0, 1]  (one a per example; Algorithm 1, line 6)

with lambda = 10, n_critic = 5 and Adam(lr 1e-4, beta1 0, beta2 0.9). The penalty is per
example, so the critic must not use batch norm (it couples the examples of a batch): the paper
recommends layer normalisation, which d_norm="layer" gives (GroupNorm with one group).
The penalty itself is genlab.gan.losses.gradient_penalty.

Networks: the DCGAN ones (genlab.gan.dcgan, built and held here), critic without batch norm,
raw score output; the generator loss and the evaluation losses are WGAN's (genlab.gan.wgan).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from genlab.data.base import batch_inputs
from genlab.gan import losses
from genlab.gan.dcgan import (
    GPU_PRESET,
    NormalLatentSampling,
    build_discriminator,
    build_generator,
    check_data_shape,
    dcgan_init,
    to_model_space,
)
from genlab.gan.losses import Tricks
from genlab.gan.wgan import wasserstein_evaluation, wasserstein_generator_loss


@dataclass
class WGANGPConfig:
    data_shape: tuple[int, ...] = (1, 28, 28)  # (C, H, W) images or (D,) vectors; from the data
    z_dim: int = 100
    g_width: int = 64
    d_width: int = 32  # 5 critic steps with a double backward per G step: half DCGAN's width
    hidden: int = 128  # MLP width, for vector data
    mlp_layers: int = 3
    d_norm: Literal["layer", "none"] = "layer"  # no batch norm: the penalty is per example
    spectral_norm: bool = False
    gp_weight: float = 10.0  # lambda

    def validate(self) -> None:
        check_data_shape(self.data_shape)
        if min(self.z_dim, self.g_width, self.d_width, self.hidden, self.mlp_layers) < 1:
            raise ValueError("z_dim, g_width, d_width, hidden and mlp_layers must be >= 1")
        if self.d_norm not in ("layer", "none"):
            raise ValueError(f"d_norm must be layer or none (not batch), got {self.d_norm!r}")
        if self.gp_weight < 0:
            raise ValueError(f"gp_weight must be >= 0, got {self.gp_weight}")


class WGANGP(NormalLatentSampling, nn.Module):
    Config = WGANGPConfig
    trainer = "genlab.gan.train"
    data_kinds = ("image", "vector")  # DataSpec kinds (contract.py): MLPs for vectors
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 1500,  # mnist-5k: 9.1 minutes on 2 CPU threads (docs/benchmarks.md)
        "batch_size": 64,
        "lr_g": 2e-4,  # the paper's 1e-4 is for 200k steps; a CPU affords 1500
        "lr_d": 2e-4,
        "betas": (0.0, 0.9),
        "n_critic": 5,
        "ema_decay": 0.999,
    }

    presets: ClassVar[dict[str, dict[str, Any]]] = {"gpu": GPU_PRESET}  # --preset gpu

    def __init__(self, config: WGANGPConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.generator = build_generator(config)
        self.discriminator = build_discriminator(config)  # the critic D
        dcgan_init(self)

    # --- the adversarial game -----------------------------------------------------------------
    def discriminator_won(self, d_loss: float) -> bool:
        """Never: a critic's loss has no floor, so ~0 says nothing about who wins."""
        return False

    def discriminator_loss(self, batch: Any, tricks: Tricks, step: int) -> dict[str, Tensor]:
        real = to_model_space(batch_inputs(batch), self.config.data_shape)
        with torch.no_grad():
            fake = self.generator(self.sample_latent(len(real)))
        d_real = self.discriminator(tricks(real))
        d_fake = self.discriminator(tricks(fake))
        gp = losses.gradient_penalty(lambda x: self.discriminator(tricks(x)), real, fake)
        return {
            "loss": d_fake.mean() - d_real.mean() + self.config.gp_weight * gp,
            "d_real": d_real.detach().mean(),
            "d_fake": d_fake.detach().mean(),
            "gp": gp.detach(),
        }

    def generator_loss(self, batch: Any, tricks: Tricks, step: int) -> dict[str, Tensor]:
        return wasserstein_generator_loss(self, batch, tricks)

    def loss(self, batch: Any) -> dict[str, Tensor]:
        return wasserstein_evaluation(self, batch)
