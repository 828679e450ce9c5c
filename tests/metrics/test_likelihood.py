"""NLL, bits/dim and perplexity: closed forms on a uniform model."""

from __future__ import annotations

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
