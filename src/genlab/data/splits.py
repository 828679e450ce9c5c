"""Split names, fixed-forever orderings and concatenation of splits.

Why hash-based orderings: a split must be the same on every machine and every numpy version,
for as long as the project lives, or "val loss" stops being comparable between runs. numpy's
`Generator` methods carry no cross-version stream guarantee, so the orderings that define which
example lands in which split come from BLAKE2 digests of a key and an index instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from genlab.data.base import ArrayDataset, Batch, Dataset, DataSpec
from genlab.errors import GenlabError, close_matches

SPLITS = ("train", "val", "test")


def parse_split(split: str) -> list[str]:
    """'train', 'val', 'test' or several joined by '+' ('train+val'), in the order given."""
    if not isinstance(split, str) or not split:
        raise GenlabError(f"split must be a non-empty string such as 'train', got {split!r}")
    parts = split.split("+")
    for part in parts:
        if part not in SPLITS:
            raise GenlabError(
                f"unknown split {part!r} in {split!r}: use train, val, test or several joined "
                f"by '+' (e.g. train+val){close_matches(part, SPLITS)}"
            )
    if len(set(parts)) != len(parts):
        raise GenlabError(f"split {split!r} names a split twice")
    return parts


def one_split(split: str) -> str:
    """`split` if it is exactly one of train, val, test (what a single loader accepts)."""
    if split not in SPLITS:
        raise GenlabError(f"unknown split {split!r}: use train, val or test")
    return split


def stable_order(keys: Sequence[str]) -> np.ndarray:
    """A permutation of range(len(keys)) that depends only on the keys (BLAKE2b of each key)."""
    digests = [hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest() for key in keys]
    return np.array(sorted(range(len(keys)), key=digests.__getitem__), dtype=np.int64)


def stratified_split(
    labels: np.ndarray, held_out: Mapping[str, int | float], *, key: str, rest: str = "train"
) -> dict[str, np.ndarray]:
    """Per class, the first examples in `stable_order` go to the held-out splits, in order.

    `held_out` maps a split to a count per class (int) or a fraction of each class (float,
    rounded); everything left goes to `rest`. Indices in each split are sorted ascending.
    """
    labels = np.asarray(labels)
    chosen: dict[str, list[np.ndarray]] = {name: [] for name in [*held_out, rest]}
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        members = members[stable_order([f"{key}:{i}" for i in members])]
        start = 0
        for name, size in held_out.items():
            count = size if isinstance(size, int) else round(size * len(members))
            if start + count > len(members):
                raise ValueError(f"class {label} has {len(members)} examples, too few to split")
            chosen[name].append(members[start : start + count])
            start += count
        chosen[rest].append(members[start:])
    return {name: np.sort(np.concatenate(parts)) for name, parts in chosen.items()}


class ConcatDataset:
    """Several datasets with the same spec seen as one: index i runs through them in order.

    Used for joined splits ("train+val") of datasets that are not plain arrays (text windows,
    which must not straddle the seam between two splits).
    """

    def __init__(self, parts: Sequence[Dataset]):
        if not parts:
            raise ValueError("nothing to concatenate")
        self.parts = list(parts)
        self.spec: DataSpec = parts[0].spec
        self.offsets = torch.tensor([0, *np.cumsum([len(p) for p in parts]).tolist()])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def batch(self, indices: Tensor) -> Batch:
        indices = torch.as_tensor(indices, dtype=torch.long)
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"index out of range for a dataset of {len(self)} examples")
        which = torch.searchsorted(self.offsets, indices, right=True) - 1  # (B,) part of each
        pieces: list[tuple[Tensor, Batch]] = []
        for k, part in enumerate(self.parts):
            at = torch.nonzero(which == k).flatten()
            if len(at):
                pieces.append((at, part.batch(indices[at] - self.offsets[k])))
        return _scatter(pieces, len(indices))


def _scatter(pieces: list[tuple[Tensor, Batch]], size: int) -> Batch:
    """Reassemble per-part batches into the caller's index order."""
    first = pieces[0][1]
    fields = len(first) if isinstance(first, tuple) else 0
    if not fields:
        out = first.new_empty((size, *first.shape[1:]))
        for at, x in pieces:
            out[at] = x
        return out
    outs = [t.new_empty((size, *t.shape[1:])) for t in first]
    for at, batch in pieces:
        for out, t in zip(outs, batch, strict=True):
            out[at] = t
    return tuple(outs)


def concat(parts: Sequence[Dataset]) -> Dataset:
    """One dataset from several splits: a new ArrayDataset when all are arrays, else a view."""
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, ArrayDataset) for p in parts):
        arrays = [p for p in parts if isinstance(p, ArrayDataset)]  # narrows the type
        x = torch.cat([p.x for p in arrays])
        ys = [p.y for p in arrays]
        y = None if any(t is None for t in ys) else torch.cat([t for t in ys if t is not None])
        return ArrayDataset(x, y, arrays[0].spec)
    return ConcatDataset(parts)
