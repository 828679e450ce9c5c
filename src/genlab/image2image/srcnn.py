"""SRCNN (Dong, Loy, He & Tang 2014, "Learning a Deep Convolutional Network for Image
Super-Resolution"; TPAMI 2016 "Image Super-Resolution Using Deep Convolutional Networks").

The first convolutional network for super-resolution. The low-resolution image is first
upscaled to the target size by bicubic interpolation (Y, the "interpolated" image), then three
convolutions, read as the steps of sparse-coding SR, map Y to the high-resolution image:

    F1(Y) = max(0, W1 * Y + B1)       patch extraction and representation  (f1 = 9, n1 = 64)
    F2(Y) = max(0, W2 * F1(Y) + B2)   non-linear mapping                   (f2 = 1, n2 = 32)
    F(Y)  = W3 * F2(Y) + B3           reconstruction                       (f3 = 5)

the "9-1-5" network, trained by the mean squared error on the luma channel Y (mode "y"; the
chroma is bicubic, genlab.image2image.sr_base). Every convolution runs at the output size, so
SRCNN costs s^2 times ESPCN's per layer (the point of Shi et al. 2016).

Deviations (each for a model that trains on a 2-core CPU in minutes):
- zero padding keeps the size (the paper's convolutions are "valid" and its loss is taken on
  the 12-pixel-smaller centre): the outer 6 pixels see zeros; the metrics crop only `scale`;
- Adam (lr 1e-3, cosine decay) and PyTorch's default initialisation instead of SGD with lr
  1e-4 (1e-5 for the last layer) from N(0, 0.001): the paper's schedule needs ~10^8 updates;
- random flips and rotations of the patches (`augment`), as every SR model since EDSR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch.nn.functional as F
from torch import Tensor, nn

from genlab.image2image.sr_base import (
    SCHEDULE,
    SuperResolver,
    bicubic_upsample,
    ceil_radius,
    check_sr_config,
)


@dataclass
class SRCNNConfig:
    data_shape: tuple[int, ...] = (3, 96, 96)  # (C, H, W) clean patches; from the data
    scale: int = 3  # 2, 3 or 4
    mode: Literal["y", "rgb"] = "y"  # the paper's: the network sees the luma only
    f1: int = 9  # kernel sizes of the three layers: the paper's 9-1-5
    f2: int = 1
    f3: int = 5
    n1: int = 64  # filters of layer 1 and 2 (the paper's 64 and 32)
    n2: int = 32
    augment: bool = True  # random flips and 90-degree rotations of training patches

    def validate(self) -> None:
        check_sr_config(self.data_shape, self.scale, self.mode)
        for name in ("f1", "f2", "f3"):
            if getattr(self, name) < 1 or getattr(self, name) % 2 == 0:
                raise ValueError(f"{name} must be an odd kernel size, got {getattr(self, name)}")
        if min(self.n1, self.n2) < 1:
            raise ValueError("n1 and n2 must be >= 1")


class SRCNN(SuperResolver):
    Config: ClassVar[type] = SRCNNConfig
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 1000,
        "batch_size": 32,
        "lr": 1e-3,
        **SCHEDULE,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # --preset gpu (not measured): the paper's 9-5-5 variant, longer training
        "gpu": {
            "model_config": {"f2": 5},
            "train": {"steps": 20000, "batch_size": 128, "eval_every": 1000},
        }
    }

    def __init__(self, config: SRCNNConfig | None = None):
        super().__init__()
        config = config if config is not None else SRCNNConfig()
        config.validate()
        self.config = config
        channels = 1 if config.mode == "y" else 3
        self.conv1 = nn.Conv2d(channels, config.n1, config.f1, padding=config.f1 // 2)
        self.conv2 = nn.Conv2d(config.n1, config.n2, config.f2, padding=config.f2 // 2)
        self.conv3 = nn.Conv2d(config.n2, channels, config.f3, padding=config.f3 // 2)

    @property
    def network_radius(self) -> int:
        c = self.config
        reach = (c.f1 // 2 + c.f2 // 2 + c.f3 // 2) / c.scale  # output-size layers, in inputs
        return ceil_radius(reach, 2)  # + the bicubic upsampling's two input pixels

    def super_resolve(self, lr: Tensor) -> Tensor:
        y = bicubic_upsample(lr, self.config.scale)  # (B, n, sH, sW): the interpolated image
        return self.conv3(F.relu(self.conv2(F.relu(self.conv1(y)))))
