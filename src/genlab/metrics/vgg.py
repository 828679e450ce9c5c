"""VGG16 and LPIPS: the perceptual distance of PPL and the features of precision/recall.

- VGG16 (Simonyan & Zisserman 2015) with torchvision's module layout, so torchvision's
  `vgg16-397923af.pth` loads strictly: `features.{0,2,5,7,10,12,14,17,19,21,24,26,28}.weight/bias`
  (13 convolutions, each followed by ReLU; max pools at 4, 9, 16, 23, 30) and
  `classifier.{0,3,6}.weight/bias` (fc1, fc2, fc3).
- LPIPS v0.1 (Zhang et al. 2018), VGG variant: inputs in [-1, 1] are shifted and scaled
  (`shift = [-.030, -.088, -.188]`, `scale = [.458, .448, .450]`), the activations after
  relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 are unit-normalised along channels, their
  squared differences weighted by the learned 1x1 convolutions `lin0..lin4` (the file's keys are
  `lin{i}.model.1.weight`, shape (1, C, 1, 1); `model.0` is a dropout) and averaged over space,
  then summed over layers.
- Precision/recall features (Kynkaanniemi et al. 2019): VGG16's fc2 output (4096-d, before its
  ReLU), images resized to 224x224 and normalised with the ImageNet mean and std.

Sources: pytorch/vision torchvision/models/vgg.py, richzhang/PerceptualSimilarity lpips/lpips.py
and lpips/pretrained_networks.py, toshas/torch-fidelity torch_fidelity/sample_similarity_lpips.py,
youngjung/improved-precision-and-recall-metric-pytorch improved_precision_recall.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.metrics.imageops import quantize_uint8, to_rgb
from genlab.metrics.weights import (
    ResolvedWeights,
    describe,
    load_state_dict_file,
    load_strict,
    resolve_weights,
)

# Configuration "D": channels, "M" = 2x2 max pool.
VGG16_LAYERS = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)
# Index (in `features`) of the ReLU that ends each LPIPS slice: relu1_2, 2_2, 3_3, 4_3, 5_3.
LPIPS_TAPS = (3, 8, 15, 22, 29)
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG16(nn.Module):
    """torchvision's VGG16 layout; `classifier=False` builds only the convolutional trunk."""

    def __init__(self, *, classifier: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in VGG16_LAYERS:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU()]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.has_classifier = classifier
        if classifier:
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096),  # fc1
                nn.ReLU(),
                nn.Dropout(),
                nn.Linear(4096, 4096),  # fc2
                nn.ReLU(),
                nn.Dropout(),
                nn.Linear(4096, 1000),  # fc3
            )

    def taps(self, x: Tensor) -> list[Tensor]:
        """The five LPIPS activations (relu1_2 ... relu5_3) of x (B, 3, H, W)."""
        out = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in LPIPS_TAPS:
                out.append(x)
                if index == LPIPS_TAPS[-1]:
                    break
        return out

    def fc2(self, x: Tensor) -> Tensor:
        """(B, 3, 224, 224) ImageNet-normalised -> fc2 activations (B, 4096), before the ReLU."""
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier[3](self.classifier[1](self.classifier[0](x)))


def load_vgg16(
    path: str | Path | None = None, *, classifier: bool = True, download: bool = False
) -> tuple[VGG16, ResolvedWeights]:
    """VGG16 with torchvision's ImageNet weights; the classifier keys are skipped when unused."""
    resolved = resolve_weights("vgg16", path, download=download)
    network = VGG16(classifier=classifier)
    ignore = () if classifier else ("classifier.",)
    load_strict(network, load_state_dict_file(resolved.path), resolved.path, ignore=ignore)
    return network.eval().requires_grad_(False), resolved


class NetLinLayer(nn.Module):
    """LPIPS's learned 1x1 weighting of one layer; `model.0` is a dropout (identity at eval)."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


def _unit_normalize(x: Tensor, eps: float = 1e-10) -> Tensor:
    return x / (x.pow(2).sum(1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """LPIPS v0.1 (VGG): distance (B,) between images in [0, 1] (grey is repeated to RGB)."""

    name = "lpips-vgg16-v0.1"

    def __init__(self, trunk: VGG16 | None = None):
        super().__init__()
        self.net = trunk if trunk is not None else VGG16(classifier=False)
        for i, channels in enumerate(LPIPS_CHANNELS):
            self.add_module(f"lin{i}", NetLinLayer(channels))
        self.register_buffer(
            "shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False
        )
        self.resolved: dict[str, ResolvedWeights | None] = {"vgg16": None, "lpips-vgg": None}

    def lins(self) -> list[NetLinLayer]:
        return [getattr(self, f"lin{i}") for i in range(len(LPIPS_CHANNELS))]

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """a, b: (B, C, H, W) floats in [0, 1] -> LPIPS distance (B,)."""
        xa = (to_rgb(a.float()) * 2 - 1 - self.shift) / self.scale
        xb = (to_rgb(b.float()) * 2 - 1 - self.shift) / self.scale
        total = torch.zeros(a.shape[0], device=a.device)
        for lin, fa, fb in zip(self.lins(), self.net.taps(xa), self.net.taps(xb), strict=True):
            diff = (_unit_normalize(fa) - _unit_normalize(fb)).pow(2)  # (B, C_l, H_l, W_l)
            total = total + lin.model(diff).mean((1, 2, 3))  # spatial average of (B, 1, h, w)
        return total

    def describe(self) -> dict[str, Any]:
        return {
            "distance": self.name,
            "trunk": describe(self.resolved["vgg16"]),
            "heads": describe(self.resolved["lpips-vgg"]),
        }


def load_lpips(
    vgg_path: str | Path | None = None,
    lpips_path: str | Path | None = None,
    *,
    download: bool = False,
) -> LPIPS:
    """LPIPS with torchvision's VGG16 trunk and the v0.1 linear heads, both strictly loaded."""
    trunk, vgg_resolved = load_vgg16(vgg_path, classifier=False, download=download)
    model = LPIPS(trunk)
    heads = resolve_weights("lpips-vgg", lpips_path, download=download)
    lins = nn.ModuleDict({f"lin{i}": lin for i, lin in enumerate(model.lins())})
    load_strict(lins, load_state_dict_file(heads.path), heads.path, ignore=("scaling_layer.",))
    model.resolved = {"vgg16": vgg_resolved, "lpips-vgg": heads}
    return model.eval().requires_grad_(False)


class VGGFeatures(nn.Module):
    """Feature extractor (see features.py): VGG16 fc2 for precision/recall."""

    name = "vgg16-fc2"
    dim = 4096

    def __init__(
        self, network: VGG16, resolved: ResolvedWeights | None = None, *, channels_last: bool = True
    ):
        super().__init__()
        self.network = network.eval().requires_grad_(False)
        self.resolved = resolved
        self.channels_last = channels_last
        if channels_last:
            self.network.to(memory_format=torch.channels_last)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, images: Tensor) -> Tensor:
        x = to_rgb(quantize_uint8(images.float()) / 255)
        x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"features": self.network.fc2(x)}

    def describe(self) -> dict[str, Any]:
        return {
            "extractor": self.name,
            "dim": self.dim,
            **describe(self.resolved),
            "protocol": {
                "input": "uint8 levels / 255, grey repeated to RGB",
                "resize": "bilinear (torch, align_corners=False) to 224x224",
                "normalize": "ImageNet mean/std",
                "features": "fc2 before ReLU, 4096-d",
            },
        }


def load_vgg_features(
    path: str | Path | None = None, *, download: bool = False, **kwargs: Any
) -> VGGFeatures:
    network, resolved = load_vgg16(path, classifier=True, download=download)
    return VGGFeatures(network, resolved, **kwargs)
