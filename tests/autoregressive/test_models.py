"""Autoregressive image models: causality, no blind spot, exact likelihoods, fast == naive."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch

from genlab.autoregressive.base import raster_mask
from genlab.registry import default_config, model_class

TINY = {
    "pixelcnn": {"hidden": 6, "blocks": 2, "head": 6},
    "gated-pixelcnn": {"hidden": 6, "layers": 2, "kernel": 3, "head": 6},
    "pixelrnn-row": {"hidden": 6, "layers": 2, "head": 6},
    "pixelrnn-diag": {"hidden": 6, "layers": 2, "head": 6},
}


def build(name: str, shape, **kw):
    config = dataclasses.replace(default_config(name), data_shape=shape, **{**TINY[name], **kw})
    torch.manual_seed(0)
    return model_class(name)(config).double().eval()


def input_gradient(model, x, i, j, k):
    """d (sum of the logits of value (k, i, j)) / d x, (C, H, W)."""
    x = x.clone().requires_grad_(True)
    logits = model.logits(x)
    out = logits[:, k, i, j] if model.config.binarize else logits[:, :, k, i, j]
    out.sum().backward()
    return x.grad[0]


def order(c, h, w):
    """Raster/channel order index of every value: ((i W + j) C + k), shaped (C, H, W)."""
    i = torch.arange(h).view(1, h, 1)
    j = torch.arange(w).view(1, 1, w)
    k = torch.arange(c).view(c, 1, 1)
    return (i * w + j) * c + k


CASES = [
    (name, shape, binarize, "categorical")
    for name in TINY
    for shape, binarize in (((1, 6, 6), True), ((3, 5, 5), False))
] + [("gated-pixelcnn", (3, 5, 5), False, "logistic_mixture")]


@pytest.mark.parametrize("name,shape,binarize,output", CASES)
def test_no_output_depends_on_its_own_or_later_inputs(name, shape, binarize, output):
    model = build(name, shape, binarize=binarize, output=output)
    c, h, w = shape
    x = torch.rand(1, *shape, dtype=torch.float64)
    index = order(c, h, w)
    for i, j, k in [(0, 0, 0), (2, 3, c - 1), (h - 1, 1, 0), (h // 2, w - 1, c // 2)]:
        grad = input_gradient(model, x, i, j, k)
        later = index >= index[k, i, j]
        assert torch.all(grad[later] == 0), f"{name}: output ({k},{i},{j}) sees the future"


# (row, column, channel) of outputs whose whole past must be seen. The Diagonal BiLSTM misses
# one value: the last channel of the last pixel of the row above, for outputs more than 3
# columns left of the row's end (its 7x7 mask-A first layer carries that value only into the
# next row, which the shifted right-to-left LSTM never reads): (3, 0) is left out for it.
POSITIONS = {
    "gated-pixelcnn": [(4, 2, 1), (3, 0, 2), (2, 4, 0)],
    "pixelrnn-diag": [(4, 2, 1), (2, 4, 0), (3, 1, 2)],
}


@pytest.mark.parametrize("name", list(POSITIONS))
def test_no_blind_spot_every_earlier_value_is_seen(name):
    # receptive fields wide enough for a 5x5 image: everything before the value matters. Wide
    # layers: with 2 units per colour group a ReLU in the head can be dead at one pixel by
    # chance (a zero gradient that is not a blind spot)
    kw = {"layers": 3} if name == "gated-pixelcnn" else {}
    model = build(name, (3, 5, 5), binarize=False, hidden=24, head=24, **kw)
    x = torch.rand(1, 3, 5, 5, dtype=torch.float64)
    index = order(3, 5, 5)
    for i, j, k in POSITIONS[name]:
        grad = input_gradient(model, x, i, j, k)
        earlier = index < index[k, i, j]
        assert torch.all(grad[earlier] != 0), f"{name}: a blind spot before ({k},{i},{j})"
    if name == "pixelrnn-diag":  # the one value it misses, as explained above
        grad = input_gradient(model, x, 3, 0, 2)
        earlier = index < index[2, 3, 0]
        assert grad[2, 2, 4] == 0 and (grad[earlier] == 0).sum() == 1


def test_pixelcnn_has_the_blind_spot_the_gated_stacks_remove():
    model = build("pixelcnn", (1, 7, 7), binarize=True, blocks=4)
    grad = input_gradient(model, torch.rand(1, 1, 7, 7, dtype=torch.float64), 5, 1, 0)[0]
    # In the row above, the 7x7 first layer reaches 3 columns right and the stacked 3x3 masks
    # add nothing there (each step right costs a step up): (4, 5) and (4, 6) come before (5, 1)
    # in raster order but are invisible to it, while rows further up are reached.
    assert grad[4, 5] == 0 and grad[4, 6] == 0
    assert grad[4, 4] != 0 and grad[2, 6] != 0


@pytest.mark.parametrize("name", list(TINY))
def test_binary_log_probs_sum_to_one_over_all_images(name):
    model = build(name, (1, 2, 2), binarize=True)
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64)
    with torch.no_grad():
        total = model.log_prob(images.view(16, 1, 2, 2)).exp().sum()
    assert abs(float(total) - 1) < 1e-9


@pytest.mark.parametrize(
    "name,output",
    [(name, "categorical") for name in TINY] + [("pixelcnn", "logistic_mixture")],
)
def test_8bit_log_probs_sum_to_one_over_all_images(name, output):
    model = build(name, (1, 1, 2), binarize=False, output=output, mixtures=3)
    levels = torch.arange(256, dtype=torch.float64) / 255
    images = torch.cartesian_prod(levels, levels).view(-1, 1, 1, 2)
    with torch.no_grad():
        total = torch.cat([model.log_prob(chunk) for chunk in images.split(8192)]).exp().sum()
    assert abs(float(total) - 1) < 1e-9


def test_conditional_marginal_sums_to_one_and_labels_matter():
    model = build("gated-pixelcnn", (1, 2, 2), binarize=True, conditional=True, num_classes=3)
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64)
    images = images.view(16, 1, 2, 2)
    with torch.no_grad():
        assert abs(float(model.log_prob(images).exp().sum()) - 1) < 1e-9
        a = model.conditional_log_prob(images, torch.zeros(16, dtype=torch.long))
        b = model.conditional_log_prob(images, torch.ones(16, dtype=torch.long))
    assert abs(float(a.exp().sum()) - 1) < 1e-9 and not torch.allclose(a, b)


SAMPLE_CASES = [
    (name, shape, binarize, "categorical")
    for name in TINY
    for shape, binarize in (((1, 7, 6), True), ((3, 4, 5), False))
] + [("gated-pixelcnn", (3, 4, 5), False, "logistic_mixture")]


@pytest.mark.parametrize("name,shape,binarize,output", SAMPLE_CASES)
def test_fast_sampler_draws_exactly_the_naive_samples(name, shape, binarize, output):
    model = build(name, shape, binarize=binarize, output=output).float()
    fast = model.sample(3, generator=torch.Generator().manual_seed(0))
    naive = model.sample(3, generator=torch.Generator().manual_seed(0), naive=True)
    assert torch.equal(fast, naive)
    assert fast.shape == (3, *shape) and fast.min() >= 0 and fast.max() <= 1
    assert len(torch.unique(fast)) > 1


def test_conditional_fast_sampling_with_labels():
    model = build("gated-pixelcnn", (1, 6, 6), binarize=True, conditional=True).float()
    g = torch.Generator
    fast = model.sample(4, generator=g().manual_seed(1), labels=[0, 1, 2, 3])
    naive = model.sample(4, generator=g().manual_seed(1), labels=[0, 1, 2, 3], naive=True)
    assert torch.equal(fast, naive)
    with pytest.raises(ValueError, match="labels must be"):
        model.sample(2, labels=[11, 0])
    with pytest.raises(ValueError, match="not class-conditional"):
        build("pixelcnn", (1, 4, 4), binarize=True).sample(1, labels=3)


def test_mask_types_and_colour_groups():
    a = raster_mask(3, 3, (3, 3), "A", 3)
    b = raster_mask(3, 3, (3, 3), "B", 3)
    assert a[:, :, 0].eq(1).all() and a[:, :, 1, 0].eq(1).all() and a[:, :, 2].eq(0).all()
    assert a[:, :, 1, 2].eq(0).all()
    # centre: R sees nothing (A) / R (B); G sees R (A) / R, G (B); B sees R, G (A) / all (B)
    assert a[:, :, 1, 1].tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0]]
    assert b[:, :, 1, 1].tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]


@pytest.mark.parametrize("name, layer", [("pixelrnn-row", "row"), ("pixelrnn-diag", "diagonal")])
def test_a_pixelrnn_config_saved_before_layer_existed_loads_as_its_variant(name, layer):
    """config.json of an old run has no `layer`: the registry's variant defaults supply it, and
    the old weights (same names) load strictly."""
    from genlab.config import to_dict
    from genlab.registry import config_from

    model = build(name, (1, 4, 4), binarize=True)
    saved = {k: v for k, v in to_dict(model.config).items() if k != "layer"}
    config = config_from(name, saved)
    assert config.layer == layer
    rebuilt = model_class(name)(config).double()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64).round()
    assert torch.equal(rebuilt.eval().logits(x), model.logits(x))


def test_an_unknown_pixelrnn_layer_is_refused():
    with pytest.raises(ValueError, match="layer must be one of row, diagonal"):
        build("pixelrnn-row", (1, 4, 4), layer="grid")
