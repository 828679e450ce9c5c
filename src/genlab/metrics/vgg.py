"""VGG16 and VGG19 features, LPIPS, and the fc2 features of precision/recall.

- VGG (Simonyan & Zisserman 2015), configurations "D" (VGG16) and "E" (VGG19), with
  torchvision's module layout, so torchvision's `vgg16-397923af.pth` and `vgg19-dcbb9e9d.pth`
  load strictly: `features.N.weight/bias` for the 3x3 convolutions (each followed by a ReLU; a
  2x2 max pool ends each of the five blocks) and, with `classifier=True`, an adaptive average
  pool to 7x7 and `classifier.{0,3,6}.weight/bias` (fc1, fc2, fc3).
  Every `features` index has a name (`layer_names`): conv{b}_{i}, relu{b}_{i}, pool{b}; e.g.
  VGG19's relu5_4 is index 35 and VGG16's relu5_3 is index 29. `named_features` runs the stack
  only up to the deepest layer asked for (style transfer reads relu1_1 ... relu5_1, Gatys et al.
  2016; SRGAN's content loss reads relu5_4, Ledig et al. 2017).
- Pretrained or random (`load_vgg`): the published ImageNet weights when the file is found (see
  weights.py); else, where the caller allows it (`random_ok`), a VGG with deterministic random
  weights: torchvision's initialisation (convolutions kaiming_normal_ fan_out for ReLU, bias 0;
  linear layers N(0, 0.01), bias 0) drawn from a generator seeded with `RANDOM_SEED`, so every
  process builds the same network. Random-weight VGG features still support texture synthesis
  and style transfer (Ustyuzhaninov et al. 2016, "Texture synthesis using shallow convolutional
  networks with random filters"; He, Wang & Hopcroft 2016, "A powerful generative model using
  random weights for the deep image representation"); perceptual numbers made with them are
  not comparable with published ones, so `weights_used` says which weights made them.
- LPIPS v0.1 (Zhang et al. 2018), VGG16 variant: inputs in [-1, 1] are shifted and scaled
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

import copy
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.metrics.imageops import quantize_uint8, to_rgb
from genlab.metrics.weights import (
    WEIGHTS,
    MissingWeights,
    ResolvedWeights,
    describe,
    load_state_dict_file,
    load_strict,
    resolve_weights,
    weights_cache,
)

# Output channels of each 3x3 convolution; "M" = 2x2 max pool (torchvision's cfgs "D" and "E").
CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M") + (512, 512, 512, "M") * 2,
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M") + (512, 512, 512, 512, "M") * 2,
}
# The activations LPIPS compares (VGG16): relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RANDOM_SEED = 20160001  # the random-weight VGG: the same network in every process


def _check_arch(arch: str) -> None:
    if arch not in CONFIGS:
        raise ValueError(f"unknown VGG {arch!r}; known: {', '.join(CONFIGS)}")


def layer_names(arch: str) -> list[str]:
    """One name per `features` index: conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ..."""
    _check_arch(arch)
    names, block, conv = [], 1, 1
    for item in CONFIGS[arch]:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


def imagenet_normalize(x: Tensor) -> Tensor:
    """(B, 1 or 3, H, W) images in [0, 1] -> (B, 3, H, W) normalised with ImageNet mean/std."""
    x = to_rgb(x)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


class VGG(nn.Module):
    """torchvision's VGG16/VGG19; `classifier=False` builds only the convolutional stack."""

    def __init__(self, arch: str = "vgg19", *, classifier: bool = False):
        super().__init__()
        _check_arch(arch)
        self.arch = arch
        self.names = layer_names(arch)
        layers: list[nn.Module] = []
        channels = 3
        for item in CONFIGS[arch]:
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

    def index_of(self, names: Iterable[str]) -> dict[str, int]:
        """name -> `features` index; an unknown name is a ValueError listing the valid ones."""
        valid = self.names[: len(self.features)]  # a truncated loss network has fewer
        indices = {name: i for i, name in enumerate(valid)}
        unknown = [name for name in names if name not in indices]
        if unknown:
            raise ValueError(
                f"unknown {self.arch} layer(s) {', '.join(unknown)}; valid: {', '.join(valid)}"
            )
        return {name: indices[name] for name in names}

    def named_features(self, x: Tensor, names: Iterable[str]) -> dict[str, Tensor]:
        """x (B, 3, H, W), ImageNet-normalised -> {name: activation (B, C_l, H_l, W_l)}, in the
        order asked; the stack runs only up to the deepest requested layer."""
        wanted = self.index_of(list(names))
        by_index = {i: name for name, i in wanted.items()}
        out: dict[int, Tensor] = {}
        depth = max([-1, *wanted.values()]) + 1  # (max(..., default=) does not trace)
        for index, layer in enumerate(self.features[:depth]):
            x = layer(x)
            if index in by_index:
                out[index] = x
        return {name: out[i] for name, i in wanted.items()}

    def fc2(self, x: Tensor) -> Tensor:
        """(B, 3, 224, 224) ImageNet-normalised -> fc2 activations (B, 4096), before the ReLU."""
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier[3](self.classifier[1](self.classifier[0](x)))

    @torch.no_grad()
    def reset_random(self) -> VGG:
        """torchvision's initialisation from a generator seeded with RANDOM_SEED."""
        generator = torch.Generator().manual_seed(RANDOM_SEED)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(
                    module.weight, mode="fan_out", nonlinearity="relu", generator=generator
                )
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01, generator=generator)
                nn.init.zeros_(module.bias)
        return self


class RandomWeightsWarning(UserWarning):
    """A VGG with random weights is in use (no pretrained file was found)."""


_WARNED: set[str] = set()  # archs whose random-weight warning this process has given


def _warn_random(arch: str) -> None:
    if arch in _WARNED:
        return
    _WARNED.add(arch)
    warnings.warn(
        f"{WEIGHTS[arch].names[0]} not found ($GENLAB_WEIGHTS_DIR, {weights_cache()}): using "
        f"{arch.upper()} with deterministic random weights, fine for texture synthesis and style "
        "transfer (Ustyuzhaninov et al. 2016; He, Wang & Hopcroft 2016), but perceptual numbers "
        "are not comparable with published ones (get the file with --download)",
        RandomWeightsWarning,
        stacklevel=3,
    )


def load_vgg(
    arch: str,
    path: str | Path | None = None,
    *,
    classifier: bool = False,
    download: bool = False,
    random_ok: bool = False,
) -> tuple[VGG, ResolvedWeights | None]:
    """VGG with torchvision's ImageNet weights (the classifier keys are skipped when unused).

    With `random_ok` and no file found (nor a download allowed), a VGG with deterministic random
    weights and None for the weights, after a warning (once per process and arch). A file found
    with the wrong sha256, or an explicit path that does not exist, is still an error.
    """
    network = VGG(arch, classifier=classifier)
    try:
        resolved = resolve_weights(arch, path, download=download)
    except MissingWeights:
        if not random_ok:
            raise
        _warn_random(arch)
        return network.reset_random().eval().requires_grad_(False), None
    ignore = () if classifier else ("classifier.",)
    load_strict(network, load_state_dict_file(resolved.path), resolved.path, ignore=ignore)
    return network.eval().requires_grad_(False), resolved


_CACHE_LOCK = threading.Lock()
_LOADED: dict[str, tuple[VGG, ResolvedWeights | None]] = {}  # arch -> CPU network, its file
_ON_DEVICE: dict[tuple[str, str, int], VGG] = {}  # (arch, device, depth) -> network


def _loaded(arch: str) -> tuple[VGG, ResolvedWeights | None]:
    _check_arch(arch)
    if arch not in _LOADED:
        _LOADED[arch] = load_vgg(arch, random_ok=True)
    return _LOADED[arch]


def loss_network(
    arch: str, device: torch.device | str = "cpu", layers: Iterable[str] | None = None
) -> VGG:
    """The fixed VGG of a perceptual loss, shared by the whole process (loaded once per arch,
    moved once per device): pretrained if the file is found, else the deterministic random one.

    `layers`: the names the caller reads; the network is then truncated after the deepest of
    them (less memory on the device). Do not register it as a submodule of a model: it is not
    trained and must not be saved with the model's weights.
    """
    found = _ON_DEVICE.get((arch, str(torch.device(device)), _depth_hint(arch, layers)))
    if found is not None:  # loaded before: no lock, so a compiled loss traces through this
        return found
    with _CACHE_LOCK:
        full, _ = _loaded(arch)
        depth = len(full.features)
        if layers is not None:
            depth = max(full.index_of(list(layers)).values(), default=-1) + 1
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        key = (arch, str(device), depth)
        if key not in _ON_DEVICE:
            with torch.device("meta"):  # no weights allocated: the stack is replaced below
                network = VGG(arch)
            # a copy: moving modules shared with `full` would move `full` itself
            network.features = copy.deepcopy(full.features[:depth])
            _ON_DEVICE[key] = network.to(device).eval().requires_grad_(False)
        return _ON_DEVICE[key]


def _depth_hint(arch: str, layers: Iterable[str] | None) -> int:
    """The depth `loss_network` caches a network of `arch` for `layers` at (a name it does not
    know gives a depth no entry has: the locked path then raises)."""
    names = layer_names(arch)
    if layers is None:
        return len(names)
    deepest = -1
    for name in layers:  # a loop, not max(genexpr): dynamo traces this
        deepest = max(deepest, names.index(name) if name in names else -2)
    return deepest + 1


def weights_used(arch: str) -> str:
    """Either "random" or the sha256 of the pretrained file the loss networks of `arch` use."""
    with _CACHE_LOCK:
        _, resolved = _loaded(arch)
    return "random" if resolved is None else resolved.sha256


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

    def __init__(self, trunk: VGG | None = None):
        super().__init__()
        self.net = trunk if trunk is not None else VGG("vgg16")
        if self.net.arch != "vgg16":
            raise ValueError(f"LPIPS v0.1 uses a VGG16 trunk, not {self.net.arch}")
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

    def taps(self, x: Tensor) -> list[Tensor]:
        """The five LPIPS activations (relu1_2 ... relu5_3) of x (B, 3, H, W)."""
        return list(self.net.named_features(x, LPIPS_LAYERS).values())

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """a, b: (B, C, H, W) floats in [0, 1] -> LPIPS distance (B,)."""
        xa = (to_rgb(a.float()) * 2 - 1 - self.shift) / self.scale
        xb = (to_rgb(b.float()) * 2 - 1 - self.shift) / self.scale
        total = torch.zeros(a.shape[0], device=a.device)
        for lin, fa, fb in zip(self.lins(), self.taps(xa), self.taps(xb), strict=True):
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
    trunk, vgg_resolved = load_vgg("vgg16", vgg_path, download=download)
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
        self, network: VGG, resolved: ResolvedWeights | None = None, *, channels_last: bool = True
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
    network, resolved = load_vgg("vgg16", path, classifier=True, download=download)
    return VGGFeatures(network, resolved, **kwargs)
