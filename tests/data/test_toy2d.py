"""toy2d:NAME: every density is finite (N, 2) float32, seeded, with independent splits."""

from __future__ import annotations

import pytest
import torch

from genlab.data import list_datasets, load_dataset
from genlab.data.toy2d import DENSITIES
from genlab.errors import GenlabError


@pytest.mark.parametrize("name", list(DENSITIES))
def test_every_density_is_finite_and_seeded(name):
    data = load_dataset(f"toy2d:{name}", "train", n=1000)
    x = data.batch(torch.arange(len(data)))
    assert isinstance(x, torch.Tensor) and x.shape == (1000, 2) and x.dtype == torch.float32
    assert torch.isfinite(x).all() and x.std(dim=0).min() > 0.3
    assert data.spec.kind == "vector" and data.spec.shape == (2,) and data.spec.levels == 0
    again = load_dataset(f"toy2d:{name}", "train", n=1000)
    assert torch.equal(data.x, again.x)
    assert not torch.equal(data.x, load_dataset(f"toy2d:{name}", "train", n=1000, seed=1).x)
    val, test = (load_dataset(f"toy2d:{name}", s, n=1000) for s in ("val", "test"))
    assert len(val) == len(test) == 200
    assert not torch.equal(val.x, test.x) and not torch.equal(val.x, data.x[:200])


def test_default_sizes_and_listing():
    assert [len(load_dataset("toy2d:moons", s)) for s in ("train", "val", "test")] == [
        10000,
        2000,
        2000,
    ]
    names = [name for name, _ in list_datasets()]
    assert all(f"toy2d:{name}" in names for name in DENSITIES)


def test_unknown_density_suggests_close_names():
    with pytest.raises(GenlabError, match="did you mean: 8gaussians"):
        load_dataset("toy2d:8gaussian")
