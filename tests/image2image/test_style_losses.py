"""The style-transfer losses against hand computations (image2image/style_losses.py)."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.image2image.style_losses import (
    content_loss,
    gram_matrix,
    mean_std,
    moment_loss,
    padded_to_multiple,
    relative_error,
    style_loss,
    total_variation,
    transfer_losses,
)
from genlab.metrics.vgg import loss_network


def test_gram_matrix_is_f_f_transpose_over_c_h_w():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # C=2 channels, H=1, W=2
    # F F^T = [[1+4, 3+8], [3+8, 9+16]], divided by C*H*W = 4
    expected = torch.tensor([[5.0, 11.0], [11.0, 25.0]]) / 4
    assert torch.equal(gram_matrix(f)[0], expected)
    batch = torch.randn(3, 4, 5, 6)
    per_image = torch.stack([gram_matrix(batch[i : i + 1])[0] for i in range(3)])
    assert torch.allclose(gram_matrix(batch), per_image, atol=1e-6)


def test_content_loss_is_the_relative_squared_error():
    f = torch.tensor([1.0, 2.0]).view(1, 1, 1, 2)
    target = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    # ||f - t||^2 / ||t||^2 = (0 + 4) / (1 + 0)
    assert content_loss(f, target).item() == pytest.approx(4.0)
    assert content_loss(target, target).item() == 0.0


def test_style_loss_weights_each_layers_relative_gram_error():
    grams = {"a": torch.tensor([[[2.0]]]), "b": torch.tensor([[[1.0, 1.0], [1.0, 1.0]]])}
    targets = {"a": torch.tensor([[[1.0]]]), "b": torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])}
    # a: (2-1)^2 / 1^2 = 1;  b: (0+1+1+0)/4 / ((1+0+0+1)/4) = 1
    assert style_loss(grams, targets, {"a": 0.5, "b": 2.0}).item() == pytest.approx(2.5)
    assert style_loss(grams, targets, {"a": 1.0}).item() == pytest.approx(1.0)


def test_a_batch_is_compared_with_one_broadcast_target():
    x = torch.tensor([1.0, 3.0]).view(2, 1, 1, 1)
    target = torch.tensor([2.0]).view(1, 1, 1, 1)
    assert relative_error(x, target).item() == pytest.approx(0.25)  # mean(1, 1) / 4


def test_total_variation_by_hand():
    x = torch.tensor([[0.0, 1.0], [3.0, 5.0]]).view(1, 1, 2, 2)
    # vertical differences 3, 4 -> mean square 12.5; horizontal 1, 2 -> 2.5
    assert total_variation(x).item() == pytest.approx(15.0)
    assert total_variation(torch.ones(2, 3, 4, 4)).item() == 0.0


def test_mean_std_and_the_moment_loss():
    f = torch.tensor([1.0, 3.0, 5.0, 7.0]).view(1, 1, 2, 2)
    mu, sigma = mean_std(f, eps=0.0)
    assert mu.item() == 4.0 and sigma.item() == pytest.approx(math.sqrt(5.0))
    target = 2 * f  # mean 8, sigma 2 sqrt(5)
    # (4 - 8)^2 / 64 + (sqrt5 - 2 sqrt5)^2 / 20, with eps 1e-5 inside sigma
    assert moment_loss(f, target).item() == pytest.approx(0.25 + 0.25, rel=1e-5)


def test_transfer_losses_vanish_for_the_images_themselves():
    vgg = loss_network("vgg19", "cpu")
    content, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 40, 36)
    same = transfer_losses(vgg, content, content, style)
    assert same["content"] == 0.0 and same["style"] > 0
    assert transfer_losses(vgg, style, style, style)["style"] == 0.0


def test_padding_to_a_multiple_reflects_and_keeps_the_original_size():
    x = torch.arange(15.0).view(1, 1, 3, 5)
    padded, size = padded_to_multiple(x, 4)
    assert padded.shape == (1, 1, 4, 8) and size == (3, 5)
    assert torch.equal(padded[..., :3, :5], x)
    assert torch.equal(padded[0, 0, 3, :5], x[0, 0, 1])  # row 3 mirrors row 1
    tiny, _ = padded_to_multiple(torch.rand(1, 3, 1, 2), 8)  # too small to reflect
    assert tiny.shape == (1, 3, 8, 8)
