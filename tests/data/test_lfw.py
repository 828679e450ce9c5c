"""lfw: scikit-image's bundled face crops, offline."""

from __future__ import annotations

import pytest
import torch

from genlab.data import load_dataset

pytest.importorskip("skimage")


def test_lfw_splits_are_disjoint_faces_resized_to_image_size():
    splits = {s: load_dataset("lfw", s) for s in ("train", "val", "test")}
    assert [len(d) for d in splits.values()] == [80, 10, 10]
    images = {s: d.batch(torch.arange(len(d))) for s, d in splits.items()}
    assert images["train"].shape == (80, 1, 32, 32)
    assert images["train"].min() >= 0 and images["train"].max() <= 1
    flat = torch.cat([x.flatten(1) for x in images.values()])
    assert len(torch.unique(flat, dim=0)) == 100, "a face appears in two splits"
    big = load_dataset("lfw", "test", image_size=64)
    assert big.spec.shape == (1, 64, 64) and big.spec.num_classes == 0


def test_lfw_is_not_the_non_face_half():
    """The faces are the first 100 images: at their native 25x25 our images have their mean
    intensity, not that of the 100 background patches that follow them."""
    from skimage.data import lfw_subset

    raw = torch.as_tensor(lfw_subset(), dtype=torch.float32)
    ours = load_dataset("lfw", "train+val+test", image_size=25).batch(torch.arange(100))
    assert torch.allclose(ours.mean(), raw[:100].mean(), atol=0.01)
    assert not torch.allclose(ours.mean(), raw[100:].mean(), atol=0.01)
