"""The dataset contract every named dataset keeps.

A dataset is a fixed split held by index. The training loop never iterates a DataLoader: it
draws a seeded permutation of indices and asks the dataset for a batch, so data order is part of
the resumable trainer state and a resumed run sees exactly the batches an uninterrupted run sees.

Images come out as float32 in [0, 1] with shape (B, C, H, W) (8-bit data: value / 255, so the
model can recover the integer level as round(x * 255)); 2-D toy data as float32 (B, 2);
labels as int64 (B,).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

Batch = Tensor | tuple[Tensor, ...]


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about its data to build itself."""

    kind: str  # "image" | "vector" | "text"
    shape: tuple[int, ...]  # one example: (C, H, W) for images, (D,) for vectors, (T,) for text
    num_classes: int = 0  # 0 when unlabelled
    levels: int = 256  # number of discrete levels per value for 8-bit images (0 = continuous)
    vocab_size: int = 0  # text only
    extra: dict = field(default_factory=dict, compare=False)


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
