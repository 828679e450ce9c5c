"""Pretrained weights for the metric feature extractors: where they come from, how they load.

The reference metrics are only comparable with published numbers when they run the very same
network weights, so every file genlab knows is pinned by sha256 in `WEIGHTS` below, and every
result records the (full) sha256 of the file that produced it.

Pins and prefixes: a pinned value of 64 hex digits is the whole sha256; a pinned value shorter
than 64 hex digits (at least 8) is a prefix of it, and every check (a file found on disk, an
explicit path with a known name, a download) compares that prefix. torchvision publishes only the
first 8 hex digits of its files' sha256 (in the file name, e.g. `vgg19-dcbb9e9d.pth`;
torch.hub's `check_hash` compares exactly that prefix), so those files are pinned by it.

Resolution order for a named file (`resolve_weights`):
1. an explicit path (`--weights PATH`): used as given; its sha256 is recorded, and a file whose
   name is a known one must still match its pinned sha256;
2. `$GENLAB_WEIGHTS_DIR/<file name>` (any of the names the file is known by);
3. the cache, `cache_dir()/weights/<file name>` (`$GENLAB_CACHE_DIR`, default ~/.cache/genlab);
4. a download into the cache, only when allowed (`download=True`, CLI `--download`), through
   `genlab.data.download`: streamed to a temporary file, sha256-checked, renamed into place.
A file found in 2. or 3. with the wrong sha256 is an error (never silently used); a missing
file without permission to download is an error that names the file, its sha256 and its URL.

Loading (`load_state_dict_file`) never unpickles arbitrary objects: safetensors, or
`torch.load(weights_only=True)` for `.pth` files (zip or legacy format), or, for TorchScript
archives, `torch.jit.load` (TorchScript runs its own program, not Python; only load archives you
trust: the pinned NVIDIA one is checked by sha256 first).
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from genlab.data.download import cache_dir  # weights, extractors, statistics: $GENLAB_CACHE_DIR
from genlab.errors import GenlabError
from genlab.fileio import sha256_file

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class WeightFile:
    """One pretrained file a metric can use."""

    key: str  # genlab's name for it, e.g. "inception-fid"
    names: tuple[str, ...]  # file names it is known by; the first is the one we save
    urls: tuple[str, ...]  # mirrors, tried in order
    sha256: str  # 64 hex digits, or a shorter published prefix (see the module docstring)
    size: int  # bytes, for the error message
    description: str
    source: str  # where the architecture and the hash come from

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9a-f]{8,64}", self.sha256):
            raise ValueError(f"{self.key}: sha256 must be 8 to 64 lowercase hex digits")

    def matches(self, digest: str) -> bool:
        """Whether a file's full sha256 is the pinned one (or starts with the pinned prefix)."""
        return digest.startswith(self.sha256)

    def pin(self) -> str:
        """The pin as the messages show it: a prefix ends with '...'."""
        return self.sha256 if len(self.sha256) == 64 else f"{self.sha256}..."


# Sources (repository + path) for every URL and hash are in docs/metrics.md.
WEIGHTS: dict[str, WeightFile] = {
    "inception-fid": WeightFile(
        key="inception-fid",
        names=(
            "pt_inception-2015-12-05-6726825d.pth",
            "weights-inception-2015-12-05-6726825d.pth",
        ),
        urls=(
            "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
            "pt_inception-2015-12-05-6726825d.pth",
            "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
            "weights-inception-2015-12-05-6726825d.pth",
        ),
        sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
        size=95_628_359,
        description="FID Inception-v3 (TF inception-2015-12-05 ported to PyTorch), state dict",
        source="mseitzer/pytorch-fid src/pytorch_fid/inception.py; "
        "toshas/torch-fidelity torch_fidelity/feature_extractor_inceptionv3.py",
    ),
    "inception-fid-torchscript": WeightFile(
        key="inception-fid-torchscript",
        names=("inception-2015-12-05.pt",),
        urls=(
            "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
            "inception-2015-12-05.pt",
        ),
        sha256="f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4",
        size=95_607_719,
        description="NVIDIA's TorchScript of the same TF Inception (StyleGAN2-ADA, clean-fid)",
        source="GaParmar/clean-fid cleanfid/inception_torchscript.py; "
        "crowsonkb/k-diffusion (pinned digest)",
    ),
    "vgg16": WeightFile(
        key="vgg16",
        names=("vgg16-397923af.pth",),
        urls=("https://download.pytorch.org/models/vgg16-397923af.pth",),
        sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        size=553_433_881,
        description="torchvision VGG16 (ImageNet), the trunk of LPIPS and of precision/recall",
        source="pytorch/vision torchvision/models/vgg.py; "
        "toshas/torch-fidelity torch_fidelity/sample_similarity_lpips.py",
    ),
    "vgg19": WeightFile(
        key="vgg19",
        names=("vgg19-dcbb9e9d.pth",),
        urls=("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",),
        sha256="dcbb9e9d",  # torchvision publishes this prefix only (the file name's hash)
        size=574_673_361,
        description="torchvision VGG19 (ImageNet), the loss network of style transfer and SRGAN",
        source="pytorch/vision torchvision/models/vgg.py",
    ),
    "lpips-vgg": WeightFile(
        key="lpips-vgg",
        names=("lpips-vgg-v0.1.pth", "vgg.pth"),
        urls=(
            "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/"
            "lpips/weights/v0.1/vgg.pth",
        ),
        sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
        size=7_289,
        description="LPIPS v0.1 linear heads for VGG16 (lin0..lin4)",
        source="richzhang/PerceptualSimilarity lpips/lpips.py, lpips/weights/v0.1/vgg.pth",
    ),
}


# --- where files live -------------------------------------------------------------------------
def weights_cache() -> Path:
    return cache_dir() / "weights"


def file_sha256(path: Path) -> str:
    """sha256 of a file, computed afresh each time (a cache keyed on mtime can miss a rewrite)."""
    return sha256_file(Path(path))


class MissingWeights(GenlabError):
    """No file found and no permission to download (callers may fall back, e.g. random VGG)."""


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path
    sha256: str
    verified: bool  # the sha256 matches the pinned one
    key: str


def _where_to_get(entry: WeightFile) -> str:
    return (
        f"put {entry.names[0]} ({entry.size:,} bytes, sha256 {entry.pin()}) in "
        f"$GENLAB_WEIGHTS_DIR or {weights_cache()}, pass it with --weights PATH, or allow the "
        f"download with --download (from {entry.urls[0]})"
    )


def _search_folders() -> list[Path]:
    folders = []
    configured = os.environ.get("GENLAB_WEIGHTS_DIR")
    if configured:
        folders.append(Path(configured).expanduser())
    folders.append(weights_cache())
    return folders


def resolve_weights(
    key: str,
    path: str | Path | None = None,
    *,
    download: bool = False,
    timeout: float = 60.0,
) -> ResolvedWeights:
    """The local file for weights `key` (see the module docstring for the order)."""
    if key not in WEIGHTS:
        raise GenlabError(f"unknown weights {key!r}; known: {', '.join(WEIGHTS)}")
    entry = WEIGHTS[key]
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise GenlabError(f"weights file {path} does not exist")
        digest = file_sha256(path)
        if path.name in entry.names and not entry.matches(digest):
            raise GenlabError(
                f"{path} has sha256 {digest[:16]}..., but {path.name} should have "
                f"{entry.sha256[:16]}...; the file is corrupt or not the published one"
            )
        return ResolvedWeights(path, digest, entry.matches(digest), key)
    for folder in _search_folders():
        for name in entry.names:
            candidate = folder / name
            if candidate.is_file():
                digest = file_sha256(candidate)
                if not entry.matches(digest):
                    raise GenlabError(
                        f"{candidate} has sha256 {digest[:16]}..., expected {entry.sha256[:16]}...; "
                        "delete it (it is corrupt or a different file) or pass a file you trust "
                        "with --weights PATH"
                    )
                return ResolvedWeights(candidate, digest, True, key)
    if not download:
        raise MissingWeights(f"{entry.description} not found: {_where_to_get(entry)}")
    from genlab.data.download import download as fetch

    dest = weights_cache() / entry.names[0]
    fetch(
        entry.urls,
        dest,
        entry.sha256,  # a prefix pin is compared as a prefix there too
        timeout=timeout,
        offline_hint=f"Without network, {_where_to_get(entry)}.",
    )
    return ResolvedWeights(dest, file_sha256(dest), True, key)


# --- loading ----------------------------------------------------------------------------------
def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files with a `constants.pkl` and a `code/` folder."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(n.endswith("/constants.pkl") or n == "constants.pkl" for n in names) and any(
        "/code/" in n or n.startswith("code/") for n in names
    )


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    """torch.jit.load on CPU; torch >= 2.10 marks TorchScript deprecated, which we accept here."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".*torch.jit.*deprecated", category=DeprecationWarning
            )
            return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as e:  # torch raises RuntimeError and others for a bad archive
        raise GenlabError(f"cannot load TorchScript {path}: {str(e).splitlines()[0]}") from None


def load_state_dict_file(path: Path) -> dict[str, Tensor]:
    """Tensors of a weights file: safetensors, a `.pth` state dict (weights_only), or the
    parameters and buffers of a TorchScript archive."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(16)
    if path.suffix == ".safetensors" or (len(head) >= 9 and head[8:9] == b"{"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise GenlabError(
                f"corrupt safetensors file {path}: {str(e).splitlines()[0]}"
            ) from None
    if is_torchscript(path):
        return dict(load_torchscript(path).state_dict())
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors alike mean "not a state dict we load"
        raise GenlabError(
            f"cannot load {path} as a weights-only state dict: {str(e).splitlines()[0]}"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise GenlabError(f"{path} does not hold a state dict of tensors")
    return dict(state)


def load_strict(
    module: nn.Module,
    state: dict[str, Tensor],
    source: Path | str,
    *,
    ignore: Iterable[str] = (),
) -> None:
    """Load `state` into `module`, requiring the exact key set and shapes.

    `ignore`: key prefixes the file may carry that this module does not use (e.g. a VGG16's
    classifier when only its convolutions are needed). BatchNorm `num_batches_tracked` counters
    missing from older files are filled in: they never affect inference.
    """
    ignore = tuple(ignore)
    state = {k: v for k, v in state.items() if not k.startswith(ignore)} if ignore else state
    own = module.state_dict()
    for key, value in own.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise GenlabError(f"{source} does not match the architecture: {'; '.join(parts)} keys")
    for key, value in own.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise GenlabError(
                f"{source}: {key} has shape {tuple(state[key].shape)}, expected {tuple(value.shape)}"
            )
    module.load_state_dict(state, strict=True)


def describe(resolved: ResolvedWeights | None, **extra: Any) -> dict[str, Any]:
    """The weights part of a result: file name, sha256, whether it is the pinned file."""
    if resolved is None:
        return {"weights": None, **extra}
    return {
        "weights": resolved.path.name,
        "weights_sha256": resolved.sha256,
        "weights_verified": resolved.verified,
        **extra,
    }
