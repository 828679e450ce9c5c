"""The offline domain extractor: a small digit classifier that genlab trains itself.

The Inception network needs a 96 MB download and sees 28x28 digits as blurry 299x299 photos.
For digit models there is a cheaper, offline and arguably more meaningful judge: a CNN trained
on real digits, in the spirit of the "MNIST classifier score"/"FID with a domain network" used in
the GAN literature. Its 128-d penultimate activations give "FID (digits)" and "KID (digits)",
its class probabilities "IS (digits)" (at most 10, one per class).
These numbers are comparable between genlab runs that use the same classifier file (its sha256
is recorded in every result), never with published Inception-based numbers.

The classifier trains in 30-60 s on one CPU core from mnist-5k's 4000 training digits
(random shifts of up to 2 pixels as augmentation, AdamW, one-cycle learning rate) and must reach
>= 98% on mnist-5k's 500 test digits. It is trained once per configuration and cached as
safetensors under `cache_dir()/weights/digits-classifier-<config hash>.safetensors`, with the
config, its test accuracy and the genlab version in the file's metadata.

Network (B, 1, 28, 28) in [0, 1]:
    conv3x3(32) ReLU maxpool2 -> conv3x3(48) ReLU maxpool2 -> fc(2352 -> 128) ReLU = features
    -> dropout -> fc(128 -> 10) = logits
This is a metrics tool, not a generative model: it is not in the model registry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.data.base import IMAGE
from genlab.errors import GenlabError
from genlab.metrics.imageops import quantize_uint8, resize_bilinear_tf1, to_grey
from genlab.metrics.weights import ResolvedWeights, describe, file_sha256, weights_cache

FORMAT_VERSION = 1  # bump when the network or the training recipe changes
IMAGE_SIZE = 28
MIN_ACCURACY = 0.98


@dataclass(frozen=True)
class DigitsConfig:
    dataset: str = "mnist-5k"  # trained on its "train" split, tested on "test"
    channels: tuple[int, int] = (32, 48)
    kernel: int = 3
    feature_dim: int = 128  # D of "FID (digits)"
    dropout: float = 0.3
    epochs: int = 12
    batch_size: int = 128
    lr: float = 4e-3  # peak of the one-cycle schedule
    weight_decay: float = 1e-4
    shift: int = 2  # random translation augmentation, pixels
    seed: int = 0

    def digest(self) -> str:
        """A short hash of the config and the recipe version: the cache file's name."""
        text = json.dumps({"format": FORMAT_VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


class DigitsNet(nn.Module):
    def __init__(self, config: DigitsConfig):
        super().__init__()
        c1, c2 = config.channels
        k = config.kernel
        self.conv1 = nn.Conv2d(1, c1, k, padding=k // 2)
        self.conv2 = nn.Conv2d(c1, c2, k, padding=k // 2)
        self.fc = nn.Linear(c2 * 7 * 7, config.feature_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.feature_dim, 10)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """x (B, 1, 28, 28) in [0, 1] -> features (B, D) and logits (B, 10)."""
        x = F.max_pool2d(F.relu(self.conv1(x - 0.5)), 2)  # (B, c1, 14, 14)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (B, c2, 7, 7)
        features = F.relu(self.fc(torch.flatten(x, 1)))  # (B, D)
        return {"features": features, "logits": self.head(self.dropout(features))}


def random_shift(x: Tensor, shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image by an integer offset in [-shift, shift]^2, zero-filled."""
    b, c, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift))
    dy, dx = torch.randint(0, 2 * shift + 1, (2, b), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]  # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]  # (B, 1, 1, W)
    return padded[
        torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols
    ]


@torch.no_grad()
def accuracy(net: DigitsNet, x: Tensor, y: Tensor, batch_size: int = 500) -> float:
    net.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = net(x[start : start + batch_size])["logits"]
        correct += int((logits.argmax(1) == y[start : start + batch_size]).sum())
    return correct / max(len(x), 1)


def _split(config: DigitsConfig, split: str) -> tuple[Tensor, Tensor]:
    from genlab.data import batch_labels, load_dataset

    data = load_dataset(config.dataset, split)
    if data.spec.modality is not IMAGE or tuple(data.spec.shape) != (1, IMAGE_SIZE, IMAGE_SIZE):
        raise GenlabError(f"the digit classifier trains on 1x28x28 digits, not {config.dataset}")
    batch = data.batch(torch.arange(len(data)))
    labels = batch_labels(batch)
    if labels is None:
        raise GenlabError(f"{config.dataset} has no labels to train the digit classifier on")
    return batch[0].float(), labels.long()


def train_classifier(config: DigitsConfig = DigitsConfig()) -> tuple[DigitsNet, float]:
    """Train from scratch (seeded; the global RNG is left untouched); returns (net, test acc)."""
    x, y = _split(config, "train")
    x_test, y_test = _split(config, "test")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # initial weights and dropout masks
        generator = torch.Generator().manual_seed(config.seed)  # data order and shifts
        net = DigitsNet(config)
        steps_per_epoch = math.ceil(len(x) / config.batch_size)
        optimizer = torch.optim.AdamW(
            net.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
        )
        for _ in range(config.epochs):
            net.train()
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), config.batch_size):
                idx = order[start : start + config.batch_size]
                inputs = random_shift(x[idx], config.shift, generator) if config.shift else x[idx]
                loss = F.cross_entropy(net(inputs)["logits"], y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
    return net.eval(), accuracy(net, x_test, y_test)


def cache_path(config: DigitsConfig = DigitsConfig(), folder: Path | None = None) -> Path:
    return (folder or weights_cache()) / f"digits-classifier-{config.digest()}.safetensors"


def load_classifier(
    config: DigitsConfig = DigitsConfig(),
    *,
    path: str | Path | None = None,
    cache: Path | None = None,
    train: bool = True,
) -> tuple[DigitsNet, ResolvedWeights, dict[str, str]]:
    """The cached classifier for `config` (trained and cached first if missing and `train`).

    Returns the network (eval mode), its file's identity and the file's metadata.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file, save_file

    from genlab import __version__
    from genlab.fileio import atomic_write
    from genlab.metrics.weights import load_strict

    file = Path(path) if path is not None else cache_path(config, cache)
    if not file.is_file():
        if path is not None or not train:
            raise GenlabError(
                f"digit classifier {file} not found; it is trained on first use "
                "(about a minute on a CPU) by `genlab evaluate RUN --features digits`"
            )
        net, test_accuracy = train_classifier(config)
        if test_accuracy < MIN_ACCURACY:
            raise GenlabError(
                f"the digit classifier reached only {test_accuracy:.1%} on {config.dataset} test "
                f"(needs {MIN_ACCURACY:.0%}); not cached"
            )
        metadata = {
            "config": json.dumps(dataclasses.asdict(config), sort_keys=True),
            "format_version": str(FORMAT_VERSION),
            "test_accuracy": f"{test_accuracy:.4f}",
            "genlab_version": __version__,
        }
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            tensors = {k: v.contiguous() for k, v in net.state_dict().items()}
            atomic_write(file, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
        except OSError as e:
            raise GenlabError(
                f"cannot write the digit classifier to {file} ({e.strerror}); set "
                "GENLAB_CACHE_DIR to a writable folder"
            ) from None
    try:
        with safe_open(str(file), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
        state = load_file(str(file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise GenlabError(f"corrupt digit classifier {file}: {str(e).splitlines()[0]}") from None
    saved = json.loads(metadata.get("config", "{}"))
    if saved and "channels" in saved:
        saved["channels"] = tuple(saved["channels"])
    file_config = DigitsConfig(**saved) if saved else config
    net = DigitsNet(file_config)
    load_strict(net, state, file)
    resolved = ResolvedWeights(file, file_sha256(file), True, "digits-classifier")
    return net.eval().requires_grad_(False), resolved, metadata


class DigitsExtractor(nn.Module):
    """Feature extractor (see features.py) around the digit classifier."""

    name = "digits-cnn"

    def __init__(
        self,
        network: DigitsNet,
        resolved: ResolvedWeights | None = None,
        metadata: dict | None = None,
    ):
        super().__init__()
        self.network = network.eval().requires_grad_(False)
        self.resolved = resolved
        self.metadata = metadata or {}
        self.dim = network.fc.out_features

    def preprocess(self, images: Tensor) -> Tensor:
        """(B, 1 or 3, H, W) in [0, 1] -> (B, 1, 28, 28): grey, 8-bit levels, TF1 resize."""
        x = quantize_uint8(to_grey(images.float()))
        x = resize_bilinear_tf1(x, (IMAGE_SIZE, IMAGE_SIZE))
        return x / 255

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.network(x)

    def float_distance(self, a: Tensor, b: Tensor) -> Tensor:
        """||f(a) - f(b)||^2 (B,) on float images (no 8-bit rounding): PPL's distance (digits)."""

        def prepared(images: Tensor) -> Tensor:
            return resize_bilinear_tf1(
                to_grey(images.float().clamp(0, 1)), (IMAGE_SIZE, IMAGE_SIZE)
            )

        fa, fb = self.network(prepared(a))["features"], self.network(prepared(b))["features"]
        return (fa - fb).pow(2).sum(1)

    def describe(self) -> dict[str, Any]:
        return {
            "extractor": self.name,
            "dim": self.dim,
            **describe(self.resolved),
            "test_accuracy": float(self.metadata.get("test_accuracy", "nan")),
            "protocol": {
                "name": "digits",
                "input": "grey (channel mean), uint8 levels / 255",
                "resize": "TF1 bilinear to 28x28",
                "features": f"penultimate ReLU, {self.dim}-d",
                "logits": "10 digit classes (with bias)",
            },
        }


def load_digits_extractor(
    path: str | Path | None = None, *, cache: Path | None = None, train: bool = True
) -> DigitsExtractor:
    net, resolved, metadata = load_classifier(path=path, cache=cache, train=train)
    return DigitsExtractor(net, resolved, metadata)
