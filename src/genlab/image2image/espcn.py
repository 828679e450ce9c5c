"""ESPCN (Shi, Caballero, Huszar, Totz, Aitken, Bishop, Rueckert & Wang 2016, "Real-Time Single
Image and Video Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural Network").

Unlike SRCNN, every convolution runs at the *low* resolution; only the last layer produces
r^2 C channels per input pixel, which the periodic shuffle PS rearranges into an r-times larger
image (the sub-pixel convolution layer, eq. 4):

    f1(I_LR) = tanh(W1 * I_LR + b1)                            (5 x 5, 64 filters)
    f2       = tanh(W2 * f1 + b2)                              (3 x 3, 32 filters)
    I_SR     = PS(W3 * f2 + b3)                                (3 x 3, r^2 C filters)
    PS(T)_{x, y, c} = T_{floor(x / r), floor(y / r), C r mod(y, r) + C mod(x, r) + c}

PS is `nn.PixelShuffle(r)`: (B, C r^2, H, W) -> (B, C, r H, r W). A convolution with stride 1/r
in the high-resolution space equals one with r^2 filters in the low-resolution space followed
by PS, at 1/r^2 of the cost, and the upscaling filters are learned rather than bicubic. Trained
by the mean squared error on the luma Y (mode "y", the paper's; chroma bicubic, see
genlab.image2image.sr_base).

Deviations: Adam (lr 3e-3, cosine decay to 3e-4) instead of the paper's lr 0.01 -> 0.0001 on a
plateau schedule; patches 96 x 96 (the paper: 17r x 17r); random flips and rotations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from genlab.image2image.sr_base import SCHEDULE, SuperResolver, ceil_radius, check_sr_config


@dataclass
class ESPCNConfig:
    data_shape: tuple[int, ...] = (3, 96, 96)  # (C, H, W) clean patches; from the data
    scale: int = 3  # r: 2, 3 or 4
    mode: Literal["y", "rgb"] = "y"  # the paper's: the network sees the luma only
    n1: int = 64  # filters of the first two layers (the paper's 64 and 32)
    n2: int = 32
    augment: bool = True  # random flips and 90-degree rotations of training patches

    def validate(self) -> None:
        check_sr_config(self.data_shape, self.scale, self.mode)
        if min(self.n1, self.n2) < 1:
            raise ValueError("n1 and n2 must be >= 1")


class ESPCN(SuperResolver):
    Config: ClassVar[type] = ESPCNConfig
    train_defaults: ClassVar[dict[str, Any]] = {
        # x3: +0.69 dB over bicubic on the held-out photographs after 2000 steps (80 s on 2
        # cores; lr 1e-3 reached +0.33 dB in 1500 steps), bench/super_resolution.py
        "steps": 2000,
        "batch_size": 32,
        "lr": 3e-3,
        **SCHEDULE,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # --preset gpu (not measured): longer training on bigger batches
        "gpu": {"train": {"steps": 20000, "batch_size": 128, "eval_every": 1000}},
    }

    def __init__(self, config: ESPCNConfig | None = None):
        super().__init__()
        config = config if config is not None else ESPCNConfig()
        config.validate()
        self.config = config
        channels = 1 if config.mode == "y" else 3
        r = config.scale
        self.conv1 = nn.Conv2d(channels, config.n1, 5, padding=2)
        self.conv2 = nn.Conv2d(config.n1, config.n2, 3, padding=1)
        self.conv3 = nn.Conv2d(config.n2, channels * r * r, 3, padding=1)  # r^2 C sub-pixels
        self.shuffle = nn.PixelShuffle(r)  # PS: (B, C r^2, H, W) -> (B, C, r H, r W)

    @property
    def network_radius(self) -> int:
        return ceil_radius(2, 1, 1)  # 5x5, 3x3, 3x3, all at the input's resolution

    def super_resolve(self, lr: Tensor) -> Tensor:
        f1 = torch.tanh(self.conv1(lr))  # (B, n1, H, W)
        f2 = torch.tanh(self.conv2(f1))  # (B, n2, H, W)
        return self.shuffle(self.conv3(f2))  # (B, C r^2, H, W) -> (B, C, r H, r W)
