"""SRResNet (Ledig, Theis, Huszar, Caballero, Cunningham, Acosta, Aitken, Tejani, Totz, Wang &
Shi 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial
Network", section 2.2 and figure 4): the generator G of SRGAN, trained alone by the MSE.

    h0   = PReLU(conv9x9(I_LR))                                   (B, 64, H, W)
    h_b  = h_{b-1} + BN(conv3x3(PReLU(BN(conv3x3(h_{b-1})))))     B = 16 residual blocks
    h    = h0 + BN(conv3x3(h_B))                                  the long skip connection
    up   = [PReLU(PS_2(conv3x3(.)))] x 2   for x4: two sub-pixel stages of x2 (Shi et al. 2016);
           x2: one; x3: one stage with a x3 shuffle (9 x 64 channels)
    I_SR = conv9x9(up(h))                                         (B, 3, rH, rW)

The residual blocks follow Gross & Wilber's ResNet variant (no ReLU after the sum); PReLU
(He et al. 2015) learns one negative slope per layer. The paper scales I_LR to [0, 1] and
I_HR to [-1, 1]; here both are in [0, 1], the same model up to the last layer's affine map
(which it learns), and the loss is the MSE in RGB (mode "rgb", the paper's).

Defaults for a 2-core CPU: 8 residual blocks of 32 channels (the paper's 16 x 64 is the gpu
preset) and x3 like the benchmark; Adam lr 1e-3 with cosine decay (the paper: 1e-4, 10^6
updates). Deviation, `residual=True` (False and the gpu preset are the paper's): the output is
added to the bicubic upscaling of the input (global residual learning, Kim et al. 2016, VDSR)
and the last layer starts at zero, so training starts at bicubic quality. Measured on a fixed
training batch of x3 96-pixel patches (bicubic: 29.21 dB): from scratch the paper's network was
at 24.7 dB after 400 Adam steps (lr 1e-3; 25.2 without BN, 26.4 with zero-initialised block
gammas), the residual one at 29.32 dB. The network is built by `Generator`, which SRGAN (genlab.image2image.srgan) holds as
its generator under the same parameter names, so an SRResNet run initialises SRGAN (the paper
starts SRGAN from the trained SRResNet to avoid poor local optima).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from torch import Tensor, nn

from genlab.image2image.sr_base import (
    SCHEDULE,
    SuperResolver,
    bicubic_upsample,
    ceil_radius,
    check_sr_config,
)


def upsampling_factors(scale: int) -> tuple[int, ...]:
    """The sub-pixel stages of a scale: x4 = x2 x2 (the paper's), x2, and x3 as one stage."""
    return {2: (2,), 3: (3,), 4: (2, 2)}[scale]


class ResidualBlock(nn.Module):
    """x + BN(conv(PReLU(BN(conv(x))))): two 3x3 convolutions of `channels` filters."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.PReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Generator(nn.Module):
    """SRResNet's network: (B, n, H, W) in [0, 1] -> (B, n, sH, sW) (n = 1 or 3 channels).
    With `residual`, the output is added to the bicubic upscaling of the input, and the last
    layer starts at zero, so the network starts as bicubic (see the module docstring)."""

    def __init__(self, image_channels: int, channels: int, blocks: int, scale: int, residual: bool):
        super().__init__()
        self.scale, self.residual = scale, residual
        self.head = nn.Sequential(nn.Conv2d(image_channels, channels, 9, padding=4), nn.PReLU())
        self.blocks = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)])
        self.post = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels)
        )
        stages: list[nn.Module] = []
        for r in upsampling_factors(scale):  # conv to r^2 x channels, shuffle, PReLU
            stages += [nn.Conv2d(channels, channels * r * r, 3, padding=1), nn.PixelShuffle(r)]
            stages.append(nn.PReLU())
        self.upsample = nn.Sequential(*stages)
        self.tail = nn.Conv2d(channels, image_channels, 9, padding=4)
        if residual:
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, lr: Tensor) -> Tensor:
        h0 = self.head(lr)  # (B, channels, H, W)
        h = h0 + self.post(self.blocks(h0))  # the long skip connection
        out = self.tail(self.upsample(h))  # (B, channels, sH, sW) -> (B, n, sH, sW)
        return out + bicubic_upsample(lr, self.scale) if self.residual else out


def generator_radius(blocks: int, scale: int) -> int:
    """How far (input pixels) the Generator reaches: head 9x9, 2 convs per block and the post
    conv at the input's resolution; one 3x3 per upsampling stage and the 9x9 tail above it
    (a reach of k pixels at resolution r spans at most ceil(k / r) input pixels)."""
    low = 4 + 2 * blocks + 1
    resolution, stages = 1, []
    for r in upsampling_factors(scale):
        stages.append(ceil_radius(1 / resolution))
        resolution *= r
    return low + sum(stages) + ceil_radius(4 / resolution)


@dataclass
class SRResNetConfig:
    data_shape: tuple[int, ...] = (3, 96, 96)  # (C, H, W) clean patches; from the data
    scale: int = 3  # 2, 3 or 4 (the paper's is 4)
    mode: Literal["y", "rgb"] = "rgb"  # the paper's: RGB in, RGB out
    channels: int = 32  # the paper's 64 (gpu preset)
    blocks: int = 8  # B residual blocks; the paper's 16 (gpu preset)
    residual: bool = True  # learn the difference to bicubic (a deviation; False: the paper's)
    augment: bool = True  # random flips and 90-degree rotations of training patches

    def validate(self) -> None:
        check_sr_config(self.data_shape, self.scale, self.mode)
        if self.channels < 1 or self.blocks < 0:
            raise ValueError("channels must be >= 1 and blocks >= 0")


class SRResNet(SuperResolver):
    Config: ClassVar[type] = SRResNetConfig
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 3000,
        "batch_size": 8,
        "lr": 1e-3,
        **SCHEDULE,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # --preset gpu (not measured): the paper's 16 blocks of 64 channels, x4, lr 1e-4
        "gpu": {
            "model_config": {"channels": 64, "blocks": 16, "scale": 4, "residual": False},
            "train": {"steps": 100000, "batch_size": 16, "lr": 1e-4, "eval_every": 2000},
        }
    }

    def __init__(self, config: SRResNetConfig | None = None):
        super().__init__()
        config = config if config is not None else SRResNetConfig()
        config.validate()
        self.config = config
        channels = 1 if config.mode == "y" else 3
        self.generator = Generator(
            channels, config.channels, config.blocks, config.scale, config.residual
        )

    @property
    def network_radius(self) -> int:
        return generator_radius(self.config.blocks, self.config.scale)

    def super_resolve(self, lr: Tensor) -> Tensor:
        return self.generator(lr)
