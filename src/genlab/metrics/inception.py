"""The FID Inception-v3: TensorFlow's `inception-2015-12-05` graph as a PyTorch module.

FID (Heusel et al. 2017), KID and the Inception Score (Salimans et al. 2016) are defined by this
particular network, so published numbers are reproducible only with it. It differs from
torchvision's Inception-v3 in ways that each move FID:
- 1008 output classes (the 2015 graph), no auxiliary head;
- average pools in the A, C and first E blocks ignore the zero padding
  (`count_include_pad=False`, TF's behaviour);
- the last E block (Mixed_7c) pools its pool branch with a *max* pool;
- inputs: 8-bit images resized to 299x299 and scaled to [-1, 1] by one of two protocols
  (`PROTOCOLS`): "tf", TF1 bilinear resizing and (x - 128) / 128 (the TensorFlow code of TTUR and
  the original IS, torch-fidelity), or "pytorch-fid", x / 255, `F.interpolate(mode="bilinear",
  align_corners=False)` and 2x - 1 (pytorch-fid 0.3.0's `InceptionV3.forward`). The two give
  different numbers: only compare numbers of one protocol.
Features: the 2048-d output of the final average pool ("pool3"); the Inception Score uses the
logits *without* the fc bias (torch-fidelity's `logits_unbiased`, as in the TF graph's softmax
input of the original IS code).

Module and parameter names equal torchvision's `Inception3` as patched by pytorch-fid
(`FIDInceptionA/C/E_1/E_2`), so `pt_inception-2015-12-05-6726825d.pth` (and torch-fidelity's
identical re-upload) loads strictly: `Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.
running_mean`, ..., `fc.weight` (1008, 2048), `fc.bias` - 566 tensors.
NVIDIA's TorchScript `inception-2015-12-05.pt` (StyleGAN2-ADA, clean-fid) holds the same network;
it is run through its own interface (see `NvidiaInception`).

Sources: mseitzer/pytorch-fid src/pytorch_fid/inception.py, toshas/torch-fidelity
torch_fidelity/feature_extractor_inceptionv3.py, pytorch/vision torchvision/models/inception.py,
GaParmar/clean-fid cleanfid/inception_torchscript.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.errors import GenlabError, close_matches
from genlab.metrics.imageops import quantize_uint8, resize_bilinear_tf1, to_rgb
from genlab.metrics.weights import (
    ResolvedWeights,
    describe,
    is_torchscript,
    load_state_dict_file,
    load_strict,
    load_torchscript,
    resolve_weights,
)

INPUT_SIZE = 299
NUM_CLASSES = 1008
POOL_DIM = 2048
_COMMON = {
    "input": "uint8 (float samples rounded to 8-bit levels)",
    "grey": "repeated to 3 channels",
    "features": "pool3, 2048-d",
    "logits": "fc without bias, 1008 classes",
}
# The preprocessing of each published tool; numbers of different protocols are not comparable.
PROTOCOLS: dict[str, dict[str, str]] = {
    "tf": {
        "name": "tf",
        "reproduces": "the original TensorFlow FID/IS code (TTUR) and torch-fidelity",
        **_COMMON,
        "resize": "TF1 bilinear, align_corners=False, to 299x299",
        "scale": "(x - 128) / 128",
    },
    "pytorch-fid": {
        "name": "pytorch-fid",
        "reproduces": "pytorch-fid 0.3.0 (InceptionV3 with resize_input, normalize_input)",
        **_COMMON,
        "resize": "x / 255, then torch F.interpolate bilinear, align_corners=False, to 299x299",
        "scale": "2 x - 1",
    },
}
DEFAULT_PROTOCOL = "tf"


def check_protocol(name: str) -> str:
    """A known protocol name, else a one-line GenlabError."""
    if name not in PROTOCOLS:
        raise GenlabError(
            f"unknown FID protocol {name!r}; choose {' or '.join(PROTOCOLS)}"
            f"{close_matches(name, tuple(PROTOCOLS))}"
        )
    return name


def prepare_inputs(images: Tensor, protocol: str) -> Tensor:
    """(B, 3, H, W) in [0, 255] (8-bit levels) -> (B, 3, 299, 299) in [-1, 1], as `protocol`.

    "tf": TF1 bilinear resize of the [0, 255] values, then (x - 128) / 128.
    "pytorch-fid": x / 255 (torchvision's ToTensor of the 8-bit image, float32), then
    `F.interpolate(size=(299, 299), mode="bilinear", align_corners=False)` (also at 299x299,
    where it is the identity), then 2 x - 1: pytorch-fid 0.3.0's `InceptionV3.forward`.
    """
    if check_protocol(protocol) == "tf":
        return (resize_bilinear_tf1(images, (INPUT_SIZE, INPUT_SIZE)) - 128) / 128
    x = F.interpolate(
        images / 255, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False
    )
    return 2 * x - 1


# --- blocks, bottom-up ------------------------------------------------------------------------
class BasicConv2d(nn.Module):
    """conv (no bias) -> batch norm (eps 1e-3, TF's) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_tf(x: Tensor) -> Tensor:
    """3x3 stride-1 average pool that, like TF, averages only the real (unpadded) pixels."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):  # Mixed_5b/c/d, 35x35
    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):  # Mixed_6a, 35x35 -> 17x17
    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3(x)
        b3d = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b3d, bp], 1)


class InceptionC(nn.Module):  # Mixed_6b..6e, 17x17, factorized 7x7
    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4):
            b7d = layer(b7d)
        b7d = self.branch7x7dbl_5(b7d)
        bp = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([b1, b7, b7d, bp], 1)


class InceptionD(nn.Module):  # Mixed_7a, 17x17 -> 8x8
    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], 1)


class InceptionE(nn.Module):  # Mixed_7b (avg pool, TF-style) and Mixed_7c (max pool), 8x8
    def __init__(self, in_channels: int, pool: str):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        b3d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(b3d), self.branch3x3dbl_3b(b3d)], 1)
        if self.pool == "avg":
            pooled = _avg_pool_tf(x)
        else:  # the FID graph's Mixed_7c max-pools here (other Inceptions average)
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat([b1, b3, b3d, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """(B, 3, 299, 299) in [-1, 1] -> pool3 features (B, 2048) and unbiased logits (B, 1008).

    The input is already scaled (`prepare_inputs`), as pytorch-fid's blocks receive it."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(POOL_DIM, NUM_CLASSES)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        # x: (B, 3, 299, 299) in [-1, 1]
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # (B, 64, 147, 147)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (B, 64, 73, 73)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))  # (B, 192, 71, 71)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (B, 192, 35, 35)
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))  # (B, 288, 35, 35)
        x = self.Mixed_6a(x)  # (B, 768, 17, 17)
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))  # (B, 768, 17, 17)
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))  # (B, 2048, 8, 8)
        pool = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)  # (B, 2048)
        logits = pool @ self.fc.weight.T  # (B, 1008), no bias: the IS protocol
        return {"features": pool, "logits": logits}


class NvidiaInception(nn.Module):
    """NVIDIA's TorchScript of the same graph, run through its published parts.

    Its `forward(img)` resamples [0, 255] images to 299x299 itself and scales them by
    (x - 128) / 128; we feed its `layers` the already prepared input instead (clean-fid reads
    pool3 the same way), so that either protocol's preprocessing applies. The unbiased logits
    are the features times `output.weight` (what `forward(img, no_output_bias=True)` puts
    through its softmax, as StyleGAN2-ADA's IS reads it).
    """

    def __init__(self, scripted: torch.jit.ScriptModule):
        super().__init__()
        self.scripted = scripted

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        pool = self.scripted.layers.forward(x).reshape(x.shape[0], POOL_DIM)  # (B, 2048)
        logits = pool @ self.scripted.output.weight.T  # (B, 1008), no bias
        return {"features": pool, "logits": logits}


# --- the extractor ----------------------------------------------------------------------------
class InceptionExtractor(nn.Module):
    """Feature extractor (see features.py) around the FID Inception; channels_last by default."""

    name = "inception-v3-fid"
    dim = POOL_DIM

    def __init__(
        self,
        network: nn.Module,
        resolved: ResolvedWeights | None = None,
        *,
        channels_last: bool = True,
        quantize: bool = True,
        protocol: str = DEFAULT_PROTOCOL,
    ):
        super().__init__()
        self.network = network.eval().requires_grad_(False)
        self.resolved = resolved
        self.channels_last = channels_last
        self.quantize = quantize
        self.protocol = check_protocol(protocol)
        if channels_last and not isinstance(network, NvidiaInception):
            self.network.to(memory_format=torch.channels_last)

    def preprocess(self, images: Tensor) -> Tensor:
        """Float (B, C, H, W) in [0, 1] -> (B, 3, 299, 299) in [-1, 1], by the protocol."""
        x = images.float()
        x = quantize_uint8(x) if self.quantize else x.clamp(0, 1) * 255
        x = prepare_inputs(to_rgb(x), self.protocol)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.network(x)

    def describe(self) -> dict[str, Any]:
        protocol = dict(PROTOCOLS[self.protocol])
        if not self.quantize:
            protocol["input"] = "float (not rounded to 8 bits: not the reference protocol)"
        return {
            "extractor": self.name,
            "dim": self.dim,
            "implementation": type(self.network).__name__,
            **describe(self.resolved),
            "protocol": protocol,
        }


def build_from_file(path: Path, resolved: ResolvedWeights | None = None, **kwargs: Any):
    """An InceptionExtractor from a state dict (.pth/.safetensors) or a TorchScript archive."""
    path = Path(path)
    if is_torchscript(path):
        scripted = load_torchscript(path)
        network = FIDInceptionV3()
        own = set(network.state_dict())
        keys = {k for k in dict(scripted.state_dict()) if not k.endswith("num_batches_tracked")}
        if (
            keys
            and keys <= own
            and keys >= {k for k in own if not k.endswith("num_batches_tracked")}
        ):
            # A TorchScript copy of this very module: take its tensors, run our code.
            load_strict(network, dict(scripted.state_dict()), path)
        elif hasattr(scripted, "layers") and hasattr(scripted, "output"):  # a foreign file
            network = NvidiaInception(scripted)
        else:
            raise GenlabError(
                f"{path} is a TorchScript archive but neither genlab's FID Inception nor "
                "NVIDIA's inception-2015-12-05.pt (no `layers` and `output` submodules)"
            )
    else:
        network = FIDInceptionV3()
        load_strict(network, load_state_dict_file(path), path)
    return InceptionExtractor(network, resolved, **kwargs)


def load_inception(
    path: str | Path | None = None, *, download: bool = False, **kwargs: Any
) -> InceptionExtractor:
    """The FID Inception extractor with pretrained weights (see weights.py for the search order).

    Without `path`, the state dict `pt_inception-2015-12-05-6726825d.pth` is looked for first,
    then NVIDIA's `inception-2015-12-05.pt`; only the former is downloaded when allowed.
    """
    if path is not None:
        resolved = resolve_weights(_key_for(Path(path)), path)
        return build_from_file(resolved.path, resolved, **kwargs)
    try:
        resolved = resolve_weights("inception-fid")
    except GenlabError as missing:
        try:
            resolved = resolve_weights("inception-fid-torchscript")
        except GenlabError:
            if not download:
                raise GenlabError(f"{missing}; offline alternative: --features digits") from None
            resolved = resolve_weights("inception-fid", download=True)
    return build_from_file(resolved.path, resolved, **kwargs)


def _key_for(path: Path) -> str:
    return (
        "inception-fid-torchscript" if path.name == "inception-2015-12-05.pt" else "inception-fid"
    )
