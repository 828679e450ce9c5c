"""SRGAN (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network"): SRResNet's generator G trained against a discriminator D with a
perceptual loss, for textures that look real rather than the blurred mean the MSE prefers.

    min_G max_D  E[log D(I_HR)] + E[log(1 - D(G(I_LR)))]                        (eq. 2)
    l^SR      = l^SR_X + 10^-3 l^SR_Gen                                         (eq. 3)
    l^SR_VGG  = 1 / (W H) sum_{x,y} (phi_{5,4}(I_HR) - phi_{5,4}(G(I_LR)))^2   (eq. 5)
    l^SR_Gen  = -log D(G(I_LR))      (the non-saturating generator loss)       (eq. 6)

phi_{5,4} is relu5_4 of a fixed VGG19 (genlab.metrics.vgg.loss_network: not a submodule, not
saved with the weights), its features rescaled by 1/12.75 as in the paper (so the content loss
is the feature MSE times 1/12.75^2 = 0.0062, of the size of a pixel MSE); `content_layer`
picks another VGG19 layer ("relu2_2": SRGAN-VGG22) or "pixel" (SRGAN-MSE).

The discriminator (figure 4): a 3x3 convolution of 64 filters and LeakyReLU(0.2), seven 3x3
convolution + BN + LeakyReLU blocks whose filters double every other block (64 .. 512) and
whose stride alternates 2 and 1 (four halvings), then a dense layer of 1024, LeakyReLU, and one
logit (the sigmoid of eq. 2 is inside the loss, computed stably from logits). D sees images in
[-1, 1], after the adversarial loop's `tricks` (augmentation, instance noise).

Training is the shared adversarial loop (`trainer = "genlab.gan.train"`: n_critic D updates, a
G update, logging, EMA, checkpoints); the paper starts G from a trained SRResNet ("to avoid
undesired local optima") with Adam (beta1 0.9) at lr 1e-4. `warm_start(srresnet)` copies an
SRResNet model's generator, which has the same parameter names (genlab.image2image.srresnet):
`genlab train srgan --data photos --init-from RUN` with an SRResNet run (contract.WarmStartable).

Offline, without torchvision's VGG19 file, the VGG is the deterministic random-weight one
(genlab.metrics.vgg warns once): the content loss is then a random-feature distance, not the
paper's; `weights_used("vgg19")` says which (docs/super-resolution.md).
Deviations for a 2-core CPU: the generator's and discriminator's widths (the gpu preset has the
paper's), a dense layer of 256, fewer updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.image2image.sr_base import SuperResolver, check_sr_config
from genlab.image2image.srresnet import Generator, SRResNet, generator_radius

VGG_SCALE = 1 / 12.75  # the paper's rescaling of the VGG features
GENERATOR_FIELDS = (
    "scale",
    "mode",
    "channels",
    "blocks",
    "residual",
)  # what an SRResNet must share


class Discriminator(nn.Module):
    """(B, C, H, W) images in [-1, 1] -> logits (B,); H and W are the training patches'."""

    def __init__(self, image_channels: int, width: int, dense: int, size: tuple[int, int]):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(image_channels, width, 3, padding=1)]
        layers.append(nn.LeakyReLU(0.2))
        channels, (height, breadth) = width, size
        for i, multiple in enumerate((1, 2, 2, 4, 4, 8, 8)):  # strides 2, 1, 2, 1, 2, 1, 2
            # strided where the paper strides, while there is a map to halve (tiny patches)
            stride = 2 if i % 2 == 0 and min(height, breadth) > 1 else 1
            layers += [
                nn.Conv2d(channels, width * multiple, 3, stride=stride, padding=1),
                nn.BatchNorm2d(width * multiple),
                nn.LeakyReLU(0.2),
            ]
            channels = width * multiple
            if stride == 2:
                height, breadth = (height + 1) // 2, (breadth + 1) // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * height * breadth, dense),
            nn.LeakyReLU(0.2),
            nn.Linear(dense, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x)).squeeze(1)  # (B,)


@dataclass
class SRGANConfig:
    data_shape: tuple[int, ...] = (3, 96, 96)  # (C, H, W) clean patches; from the data
    scale: int = 3  # 2, 3 or 4 (the paper's is 4)
    mode: Literal["y", "rgb"] = "rgb"  # the paper's: RGB in, RGB out
    channels: int = 32  # the generator: SRResNet's fields and defaults (it starts from one)
    blocks: int = 8
    residual: bool = True  # G adds its output to bicubic (srresnet.py: a measured deviation)
    augment: bool = True  # random flips and 90-degree rotations of training patches
    d_width: int = 32  # the discriminator's first filters, doubled up to 8x; the paper's 64
    d_dense: int = 256  # its dense layer; the paper's 1024
    content_layer: str = "relu5_4"  # phi_{5,4} of VGG19 (SRGAN-VGG54); "relu2_2"; "pixel" = MSE
    content_weight: float = 1.0  # times l^SR_X; the paper's 1 fits pretrained VGG features only
    # (random-weight relu5_4 features have ~1/1000 of the feature MSE: the benchmark sets 1000)
    adversarial_weight: float = 1e-3  # the weight of l^SR_Gen in eq. 3

    def validate(self) -> None:
        check_sr_config(self.data_shape, self.scale, self.mode)
        if self.channels < 1 or self.blocks < 0 or min(self.d_width, self.d_dense) < 1:
            raise ValueError("channels, d_width and d_dense must be >= 1, blocks >= 0")
        if self.adversarial_weight < 0 or self.content_weight <= 0:
            raise ValueError("adversarial_weight must be >= 0 and content_weight > 0")
        if self.content_layer != "pixel":
            from genlab.metrics.vgg import layer_names

            if self.content_layer not in layer_names("vgg19"):
                raise ValueError(
                    f"content_layer must be a VGG19 layer or 'pixel', got {self.content_layer!r}"
                )


class SRGAN(SuperResolver):
    Config: ClassVar[type] = SRGANConfig
    trainer: ClassVar[str] = "genlab.gan.train"
    starts_from: ClassVar[tuple[str, ...]] = ("srresnet",)  # contract.WarmStartable
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 200,
        "batch_size": 4,
        "lr_g": 1e-4,  # the paper's Adam(beta1 0.9) at 1e-4
        "lr_d": 1e-4,
        "betas": (0.9, 0.999),
        "ema_decay": 0.0,  # the paper keeps no average
        "log_every": 25,
        "eval_every": 100,
        "sample_every": 100,
        "sample_n": 16,
        "checkpoint_every": 100,
        "val_split": "val",
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # --preset gpu (not measured): the paper's networks at x4 and its 10^5 updates
        "gpu": {
            "model_config": {
                "channels": 64, "blocks": 16, "scale": 4, "residual": False,
                "d_width": 64, "d_dense": 1024,
            },
            "train": {"steps": 100000, "batch_size": 16, "eval_every": 2000},
        }
    }  # fmt: skip

    def __init__(self, config: SRGANConfig | None = None):
        super().__init__()
        config = config if config is not None else SRGANConfig()
        config.validate()
        self.config = config
        n = 1 if config.mode == "y" else 3
        self.generator = Generator(n, config.channels, config.blocks, config.scale, config.residual)
        c, height, width = config.data_shape
        self.discriminator = Discriminator(c, config.d_width, config.d_dense, (height, width))

    @property
    def network_radius(self) -> int:
        return generator_radius(self.config.blocks, self.config.scale)

    def super_resolve(self, lr: Tensor) -> Tensor:
        return self.generator(lr)

    def warm_start(self, source: nn.Module) -> None:
        """Start G from a trained SRResNet, as the paper does (same names and shapes)."""
        if not isinstance(source, SRResNet):
            raise ValueError(f"SRGAN starts from an SRResNet, not a {type(source).__name__}")
        differ = [
            f"{name} {getattr(source.config, name)!r} (SRGAN: {getattr(self.config, name)!r})"
            for name in GENERATOR_FIELDS
            if getattr(source.config, name) != getattr(self.config, name)
        ]
        if differ:
            raise ValueError(f"the SRResNet's generator differs: {'; '.join(differ)}")
        self.generator.load_state_dict(source.generator.state_dict())

    # --- the losses -----------------------------------------------------------------------------
    def generate(self, lr: Tensor) -> Tensor:
        """G(I_LR) in the images' colours, (B, C, sH, sW), unclamped (gradients reach G)."""
        return self.from_network(self.generator(self.to_network(lr)), lr)

    def content_loss(self, sr: Tensor, hr: Tensor) -> Tensor:
        """l^SR_X: the MSE of VGG19 features scaled by 1/12.75 (eq. 5), or of the pixels, times
        content_weight."""
        layer, weight = self.config.content_layer, self.config.content_weight
        if layer == "pixel":
            return weight * F.mse_loss(sr, hr)
        from genlab.metrics.vgg import imagenet_normalize, loss_network

        vgg = loss_network("vgg19", sr.device, [layer])
        both = vgg.named_features(imagenet_normalize(torch.cat([sr, hr])), [layer])[layer]
        phi_sr, phi_hr = (both * VGG_SCALE).chunk(2)  # (B, C_l, H_l, W_l) each
        return weight * F.mse_loss(phi_sr, phi_hr.detach())

    def discriminator_loss(self, batch: Any, tricks: Any, step: int) -> dict[str, Tensor]:
        """-log D(I_HR) - log(1 - D(G(I_LR))), the real target smoothed to 1 - s."""
        lr, hr = self.training_pair(batch)
        with torch.no_grad():
            sr = self.generate(lr)
        real = self.discriminator(tricks(hr * 2 - 1))  # (B,) logits
        fake = self.discriminator(tricks(sr * 2 - 1))
        s = tricks.label_smoothing
        real_term = (1 - s) * F.softplus(-real) + s * F.softplus(real)  # BCE(real, 1 - s)
        loss = real_term.mean() + F.softplus(fake).mean()
        return {"loss": loss, "d_real": real.detach().mean(), "d_fake": fake.detach().mean()}

    def generator_loss(self, batch: Any, tricks: Any, step: int) -> dict[str, Tensor]:
        """l^SR = content + 10^-3 (-log D(G(I_LR))) (eq. 3)."""
        lr, hr = self.training_pair(batch)
        sr = self.generate(lr)
        content = self.content_loss(sr, hr)
        adversarial = F.softplus(-self.discriminator(tricks(sr * 2 - 1))).mean()
        loss = content + self.config.adversarial_weight * adversarial
        return {"loss": loss, "content": content.detach(), "adversarial": adversarial.detach()}

    def discriminator_won(self, d_loss: float) -> bool:
        return d_loss < 1e-3

    def loss(self, batch: Any) -> dict[str, Tensor]:
        """What the loop reports on validation data: "loss" is L_D (it reaches G through the
        fakes), with G's terms, the pixel MSE and its PSNR beside it."""
        lr, hr = self.training_pair(batch)
        sr = self.generate(lr)
        real = self.discriminator(hr * 2 - 1)
        fake = self.discriminator(sr * 2 - 1)
        d_loss = F.softplus(-real).mean() + F.softplus(fake).mean()
        content = self.content_loss(sr, hr).detach()
        adversarial = F.softplus(-fake).mean().detach()
        mse = F.mse_loss(sr.detach().clamp(0, 1), hr)
        return {
            "loss": d_loss,
            "g_loss": content + self.config.adversarial_weight * adversarial,
            "content": content,
            "adversarial": adversarial,
            "mse": mse,
            "psnr": -10 * torch.log10(mse.clamp_min(1e-10)),
            "d_real": real.detach().mean(),
            "d_fake": fake.detach().mean(),
        }
