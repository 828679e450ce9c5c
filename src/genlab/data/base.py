"""The dataset contract every named dataset keeps.

A dataset is a fixed split held by index. The training loop never iterates a DataLoader: it
draws a seeded permutation of indices and asks the dataset for a batch, so data order is part of
the resumable trainer state and a resumed run sees exactly the batches an uninterrupted run sees.

Images come out as float32 in [0, 1] with shape (B, C, H, W) (8-bit data: value / 255, so the
model can recover the integer level as round(x * 255)); 2-D toy data as float32 (B, 2);
token windows as int64 (B, T); audio as float32 (B, 1, T) amplitudes in [-1, 1] (with labels
(x, y); with a local-conditioning feature sequence (x, y, c), c float32 (B, local_channels,
T // local_hop), frame j covering samples [j * hop, (j + 1) * hop)); labels as int64 (B,).
Each dataset's `spec` (DataSpec) says what kind of data it holds (its Modality) and so which
model-config values it implies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

Batch = Tensor | tuple[Tensor, ...]


# --- modalities -------------------------------------------------------------------------------
# The model-config fields a DataSpec can fill, each read off the spec.
CONFIG_FIELDS: dict[str, Callable[[DataSpec], Any]] = {
    "data_shape": lambda spec: tuple(spec.shape),
    "num_classes": lambda spec: spec.num_classes,
    "vocab_size": lambda spec: spec.vocab_size,
    "block_size": lambda spec: spec.shape[0],  # token sequences: the window length T
    # music events: tokens per bar (steps per bar x voices); 0 for data without bars (text)
    "bar_length": lambda spec: spec.extra.get("steps_per_bar", 0) * spec.extra.get("voices", 1),
    "sample_rate": lambda spec: spec.sample_rate,  # audio: samples per second
    # audio with a feature sequence c (B, local_channels, T // local_hop); 0 when it has none
    "local_channels": lambda spec: spec.extra.get("local_channels", 0),
    "local_hop": lambda spec: spec.extra.get("local_hop", 0),
    # an environment (genlab.data.environments): its discrete actions and its gymnasium name
    "num_actions": lambda spec: spec.extra.get("num_actions", 0),
    "env": lambda spec: spec.extra.get("env", ""),
}


@dataclass(frozen=True)
class Modality:
    """What one kind of data (`DataSpec.kind`) means to shared code.

    `fields`: the model-config fields (keys of CONFIG_FIELDS) a spec of this kind fills;
    `discrete`: its values are discrete (8-bit levels, binarized pixels, tokens), so log p(x) is
    a probability and bits per value mean something (not so for continuous vectors);
    `tokens`: an example is a token sequence, so a per-token perplexity means something.
    Paired images would be one more entry of MODALITIES (and, for their samples, of
    genlab.writers.WRITERS), as audio and environments are.
    """

    kind: str
    fields: tuple[str, ...]
    discrete: bool
    tokens: bool = False


IMAGE = Modality("image", ("data_shape", "num_classes"), discrete=True)
VECTOR = Modality("vector", ("data_shape", "num_classes"), discrete=False)
# token sequences: text, and music as events (genlab.data.music), so that one language model
# trains on both; music data also fills bar_length
TOKENS = Modality(
    "text",
    ("data_shape", "num_classes", "vocab_size", "block_size", "bar_length"),
    discrete=True,
    tokens=True,
)
# audio: discrete because the models' likelihoods are over quantized amplitudes (genlab.sound's
# quantizers), so bits per value are bits per sample
AUDIO = Modality(
    "audio",
    ("data_shape", "num_classes", "sample_rate", "local_channels", "local_hop"),
    discrete=True,
)
# an environment an agent acts in (genlab.data.environments): `data_shape` is one observation's
ENVIRONMENT = Modality("environment", ("data_shape", "num_actions", "env"), discrete=False)
MODALITIES: dict[str, Modality] = {m.kind: m for m in (IMAGE, VECTOR, TOKENS, AUDIO, ENVIRONMENT)}


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about its data to build itself.

    `kind` names its Modality (MODALITIES), which says which model-config fields the spec
    fills (`config_values`) and how its values count in the likelihood metrics."""

    kind: str  # a key of MODALITIES: "image" | "vector" | "text" | "audio"
    # one example: (C, H, W) for images, (D,) for vectors, (T,) for text, (1, T) for audio
    shape: tuple[int, ...]
    num_classes: int = 0  # 0 when unlabelled
    levels: int = 256  # number of discrete levels per value for 8-bit images (0 = continuous)
    vocab_size: int = 0  # text only
    sample_rate: int = 0  # audio only: samples per second
    # e.g. text's "tokenizer", audio's "local_channels" and "local_hop"
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in MODALITIES:
            raise ValueError(f"unknown data kind {self.kind!r}; known: {', '.join(MODALITIES)}")

    @property
    def modality(self) -> Modality:
        return MODALITIES[self.kind]

    def config_values(self) -> dict[str, Any]:
        """The model-config values this data implies, by field name (genlab.contract's
        `config_for_data` keeps those a Config declares)."""
        return {name: CONFIG_FIELDS[name](self) for name in self.modality.fields}


@runtime_checkable
class Dataset(Protocol):
    spec: DataSpec

    def __len__(self) -> int: ...

    def batch(self, indices: Tensor) -> Batch:
        """The examples at `indices` (int64, shape (B,)), as (x, y) or x."""
        ...


class ArrayDataset:
    """In-memory examples: `x` as uint8 (scaled to [0, 1] on the way out) or float, optional `y`."""

    def __init__(self, x: Tensor, y: Tensor | None, spec: DataSpec):
        if y is not None and len(y) != len(x):
            raise ValueError(f"{len(x)} examples but {len(y)} labels")
        self.x, self.y, self.spec = x, y, spec

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, indices: Tensor) -> Batch:
        x = self.x[indices]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if self.y is None:
            return x
        return x, self.y[indices].long()

    def subset(self, indices: Tensor) -> ArrayDataset:
        return ArrayDataset(self.x[indices], None if self.y is None else self.y[indices], self.spec)


class Subset:
    """The examples of `data` at `indices`, renumbered 0..len-1 (any Dataset)."""

    def __init__(self, data: Dataset, indices: Tensor):
        self.data, self.indices, self.spec = data, indices.long(), data.spec

    def __len__(self) -> int:
        return len(self.indices)

    def batch(self, indices: Tensor) -> Batch:
        return self.data.batch(self.indices[torch.as_tensor(indices, dtype=torch.long)])


def kfold(data: Dataset, k: int, fold: int, seed: int = 0) -> tuple[Subset, Subset]:
    """(train, held out) for fold `fold` of `k`: the examples in a seeded random order, cut
    into k nearly equal parts; part `fold` is held out, the rest trains."""
    if not 2 <= k <= len(data):
        raise ValueError(f"folds must be between 2 and the {len(data)} examples, got {k}")
    if not 0 <= fold < k:
        raise ValueError(f"fold must be in 0..{k - 1}, got {fold}")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    parts = order.tensor_split(k)
    held = parts[fold]
    rest = torch.cat([p for i, p in enumerate(parts) if i != fold])
    return Subset(data, rest), Subset(data, held)


def batch_inputs(batch: Batch) -> Tensor:
    """The model input of a batch: x of (x, y), or the batch itself."""
    return batch[0] if isinstance(batch, tuple | list) else batch


def batch_labels(batch: Batch) -> Tensor | None:
    return batch[1] if isinstance(batch, tuple | list) and len(batch) > 1 else None
