"""mnist-5k, digits and shapes: offline image sets with fixed splits."""

from __future__ import annotations

import torch

from genlab.data import load_dataset
from genlab.data.base import ArrayDataset


def _all(dataset: ArrayDataset) -> tuple[torch.Tensor, torch.Tensor]:
    return dataset.batch(torch.arange(len(dataset)))  # type: ignore[return-value]


def test_mnist_5k_splits():
    splits = {s: load_dataset("mnist-5k", s) for s in ("train", "val", "test")}
    assert [len(d) for d in splits.values()] == [4000, 500, 500]
    assert len(load_dataset("mnist-5k", "train+val")) == 4500
    for name, count in (("test", 50), ("val", 50), ("train", 400)):
        _, y = _all(splits[name])
        assert torch.bincount(y, minlength=10).tolist() == [count] * 10
    x, _ = _all(splits["train"])
    assert x.shape == (4000, 1, 28, 28) and x.min() == 0 and x.max() == 1
    raw = splits["train"].x
    assert raw.dtype == torch.uint8 and raw.float().mean() > 20  # real digits, not blank


def test_mnist_5k_and_digits_splits_are_pinned():
    """The splits are fixed forever: these numbers must never change."""
    from genlab.data import images

    _, _, mnist = images._mnist_5k()
    assert (
        mnist["test"][:5].tolist() == [31, 33, 44, 65, 70] and int(mnist["test"].sum()) == 1254031
    )
    assert mnist["val"][:5].tolist() == [13, 37, 50, 56, 61] and int(mnist["val"].sum()) == 1251595
    _, _, digits = images._digits()
    assert (
        digits["test"][:5].tolist() == [0, 15, 22, 35, 55] and int(digits["test"].sum()) == 165441
    )
    assert int(digits["val"].sum()) == 153970


def test_mnist_5k_is_deterministic_and_splits_are_disjoint():
    first = {s: load_dataset("mnist-5k", s) for s in ("train", "val", "test")}
    second = {s: load_dataset("mnist-5k", s) for s in ("train", "val", "test")}
    for s in first:
        assert first[s] is not second[s]  # fresh objects
        assert torch.equal(first[s].x, second[s].x) and torch.equal(first[s].y, second[s].y)
    rows = {s: {bytes(img.numpy().tobytes()) for img in d.x} for s, d in first.items()}
    assert not rows["train"] & rows["val"] and not rows["train"] & rows["test"]
    assert not rows["val"] & rows["test"]


def test_digits_scaled_to_bytes_and_stratified():
    splits = {s: load_dataset("digits", s) for s in ("train", "val", "test")}
    assert [len(d) for d in splits.values()] == [1439, 179, 179]
    x = splits["train"].x
    assert x.shape[1:] == (1, 8, 8) and x.dtype == torch.uint8 and int(x.max()) == 255
    levels = torch.unique(x).tolist()
    assert set(levels) <= {round(v * 255 / 16) for v in range(17)}
    assert torch.bincount(splits["test"].y, minlength=10).min() >= 17


def test_shapes_deterministic_labelled_and_sized():
    a = load_dataset("shapes", "train", image_size=16, n=200)
    b = load_dataset("shapes", "train", image_size=16, n=200)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert len(a) == 160 and a.spec.shape == (1, 16, 16) and a.spec.num_classes == 4
    assert set(a.y.tolist()) == {0, 1, 2, 3}
    assert all(int(img.max()) == 255 and int(img.min()) == 0 for img in a.x)  # a shape on black
    other = load_dataset("shapes", "train", image_size=16, n=200, seed=1)
    assert not torch.equal(a.x, other.x)
    sizes = [len(load_dataset("shapes", s, image_size=16, n=200)) for s in ("val", "test")]
    assert sizes == [20, 20]


def test_shapes_colour_and_resolution():
    colour = load_dataset("shapes", "val", image_size=48, n=100, channels=3)
    assert colour.x.shape == (10, 3, 48, 48)
    assert any(len(set(img.reshape(3, -1).amax(dim=1).tolist())) > 1 for img in colour.x)
    grey = load_dataset("shapes", "val", image_size=48, n=100)
    # same scenes in both modes: the shape covers the same pixels
    assert torch.equal(colour.x.amax(dim=1) > 0, grey.x[:, 0] > 0)
    # the same scenes at another resolution: the same labels
    assert torch.equal(load_dataset("shapes", "val", image_size=24, n=100).y, grey.y)
