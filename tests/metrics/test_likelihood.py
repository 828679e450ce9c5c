"""NLL, bits/dim and perplexity: closed forms on a uniform model."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from genlab.data.base import ArrayDataset, DataSpec
from genlab.metrics.likelihood import negative_log_likelihood, perplexity


class Uniform(nn.Module):
    """log p(x) = -D log V: every one of V values equally likely at each of D positions."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab
        self.dummy = nn.Parameter(torch.zeros(()))

    def log_prob(self, x, *, generator=None):
        return torch.full((x.shape[0],), -x[0].numel() * math.log(self.vocab))


@pytest.mark.parametrize("batch_size", [1, 7, 100])
def test_uniform_text_model_has_perplexity_v(batch_size):
    tokens = torch.randint(65, (30, 16))
    data = ArrayDataset(tokens, None, DataSpec(kind="text", shape=(16,), vocab_size=65))
    out = negative_log_likelihood(Uniform(65), data, batch_size=batch_size)
    # log_prob is float32: -16 log 65 is off by <= 2^-24 relative, exp(nll / 16) by ~1e-7;
    # pytest.approx's default rel=1e-6 holds both
    assert out["nll_nats"] == pytest.approx(16 * math.log(65))
    assert out["bits_per_dim"] == pytest.approx(math.log2(65))
    assert out["perplexity"] == pytest.approx(65)
    assert out["nll_examples"] == 30


def test_images_have_bits_per_dim_and_no_perplexity():
    images = torch.randint(256, (10, 1, 4, 4), dtype=torch.uint8)
    data = ArrayDataset(images, None, DataSpec(kind="image", shape=(1, 4, 4)))
    out = negative_log_likelihood(Uniform(256), data, batch_size=4)
    assert out["bits_per_dim"] == pytest.approx(8.0)
    assert "perplexity" not in out
    assert perplexity(0.0) == 1.0 and perplexity(1e6) == math.inf


def test_continuous_vectors_get_nats_and_no_bits_per_dim():
    points = torch.randn(10, 2)
    data = ArrayDataset(points, None, DataSpec(kind="vector", shape=(2,), levels=0))
    out = negative_log_likelihood(Uniform(3), data, batch_size=4)
    assert out["nll_nats"] == pytest.approx(2 * math.log(3))
    assert "bits_per_dim" not in out


# --- eval.json: which NLL is which ----------------------------------------------------------
TINY_GATED = ["-o", "hidden=4", "-o", "layers=1", "-o", "head=4", "-o", "binarize=true"]


def evaluated_run(folder, *options: str) -> dict:
    from genlab.api import evaluate
    from genlab.cli import main

    args = ["train", "gated-pixelcnn", "--data", "digits", "--steps", "3", "--out", str(folder)]
    assert main([*args, "-q", *TINY_GATED, *options]) == 0
    evaluate(folder, figures=False)
    return json.loads((folder / "eval.json").read_text())


def test_eval_json_defines_its_keys_and_equal_quantities_agree(tmp_path):
    saved = evaluated_run(tmp_path / "plain")
    definitions = saved["definitions"]
    numbers = {k for k, v in saved.items() if isinstance(v, int | float)} - {"n", "seed"}
    assert numbers <= set(definitions), numbers - set(definitions)
    assert (
        "model.log_prob" in definitions["nll_nats"]
        and "nats per example" in definitions["nll_nats"]
    )
    assert "model.loss" in definitions["test_nll"]
    # An unconditional model: the loss's nll term and log_prob are both -log p(x), on the same
    # binarized digits (the loss's draws from the global RNG seeded with --seed, log_prob's from
    # a generator with that seed, batch by batch in the same order). The loss averages each
    # batch of 100 in float32 (<= 100 * 2^-24 relative), nll_nats sums in float64.
    float32_mean = 100 * 2**-24
    assert saved["test_nll"] == pytest.approx(saved["nll_nats"], rel=float32_mean)
    assert saved["test_bits_per_dim"] == pytest.approx(saved["bits_per_dim"], rel=float32_mean)


def test_a_class_conditional_models_two_nlls_are_defined_apart(tmp_path):
    """test_nll is -log p(x | y) with each example's label y; nll_nats is the label-free
    -log p(x) = -log (1/K) sum_y p(x | y) <= -log p(x | y) + log K for every example."""
    saved = evaluated_run(tmp_path / "conditional", "-o", "conditional=true")
    assert "-log p(x | y)" in saved["definitions"]["test_nll"]
    assert "marginal" in saved["definitions"]["nll_nats"]
    # the means obey the per-example bound too, up to the loss's float32 batch means
    slack = 100 * 2**-24 * saved["test_nll"]
    assert saved["nll_nats"] <= saved["test_nll"] + math.log(10) + slack
