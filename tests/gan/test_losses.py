"""Adversarial losses, penalties and DiffAugment against closed forms and brute force."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genlab.gan import losses
from genlab.gan.augment import check_policy, cutout, diff_augment, translation
from genlab.gan.losses import Tricks


def test_losses_match_their_closed_forms_at_known_logits():
    r, f = torch.tensor([0.0, 0.0]), torch.tensor([0.0, 0.0])
    # D(x) = D(G(z)) = 1/2: -log(1/2) - log(1/2) = 2 log 2
    assert losses.discriminator_loss("minimax", r, f).item() == pytest.approx(2 * math.log(2))
    assert losses.generator_loss("minimax", f).item() == pytest.approx(-math.log(2))
    assert losses.generator_loss("non-saturating", f).item() == pytest.approx(math.log(2))
    r, f = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.25])
    assert losses.discriminator_loss("hinge", r, f).item() == pytest.approx(
        (0 + 0.5 + 0 + 1.25) / 2
    )
    assert losses.discriminator_loss("wasserstein", r, f).item() == pytest.approx(
        (-3 + 0.25) / 2 - (2 + 0.5) / 2
    )
    assert losses.generator_loss("hinge", f).item() == pytest.approx(-(-3 + 0.25) / 2)


def test_one_sided_label_smoothing_is_bce_against_one_minus_s():
    r, f = torch.randn(7), torch.randn(7)
    s = 0.1
    bce = nn.functional.binary_cross_entropy_with_logits
    expected = bce(r, torch.full_like(r, 1 - s)) + bce(f, torch.zeros_like(f))
    got = losses.discriminator_loss("non-saturating", r, f, smoothing=s)
    # float32 means of 7 positive terms in another order: a few ulps (eps = 1.2e-7)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="loss must be one of"):
        losses.check_loss("least-squares")


def _critic() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1)).double()


def _numerical_grad(fn, x: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    grad = torch.zeros_like(x)
    for j in range(x.numel()):
        e = torch.zeros_like(x).flatten()
        e[j] = h
        e = e.view_as(x)
        grad.view(-1)[j] = (fn(x + e) - fn(x - e)) / (2 * h)
    return grad


def test_gradient_penalty_equals_brute_force_with_uniform_interpolation():
    critic = _critic()
    real, fake = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    torch.manual_seed(11)
    got = losses.gradient_penalty(lambda x: critic(x).squeeze(1), real, fake)
    torch.manual_seed(11)
    alpha = torch.rand(6, 1)  # U[0, 1], one per example: the same draw the penalty makes
    expected = 0.0
    with torch.no_grad():
        for i in range(6):
            x_hat = alpha[i] * real[i] + (1 - alpha[i]) * fake[i]
            g = _numerical_grad(lambda x: critic(x[None])[0, 0], x_hat)
            expected += (g.norm() - 1) ** 2 / 6
    # float64 central differences, h = 1e-6: truncation ~h^2, rounding ~eps64 / h = 2e-10
    assert got.item() == pytest.approx(float(expected), rel=1e-6)
    # a normal draw of alpha (the common bug) gives a different number
    torch.manual_seed(11)
    alpha_n = torch.randn(6, 1).double()
    x_hat = (alpha_n * real + (1 - alpha_n) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
    assert got.item() != pytest.approx(((g.norm(dim=1) - 1) ** 2).mean().item(), rel=1e-3)


def test_gradient_penalty_is_differentiable_for_the_critic():
    critic = _critic()
    gp = losses.gradient_penalty(
        lambda x: critic(x).squeeze(1), torch.randn(4, 3).double(), torch.randn(4, 3).double()
    )
    gp.backward()
    # every weight matrix shapes the input gradient (the output bias does not)
    weights = [p for p in critic.parameters() if p.dim() == 2]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)


def test_r1_equals_the_brute_force_squared_gradient_norm():
    critic = _critic()
    real = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    got = losses.r1_penalty(critic(real).squeeze(1), real)
    expected = 0.0
    with torch.no_grad():
        for i in range(5):
            g = _numerical_grad(lambda x: critic(x[None])[0, 0], real[i].detach())
            expected += g.square().sum() / 5
    # float64 central differences, h = 1e-6: truncation ~h^2, rounding ~eps64 / h = 2e-10
    assert got.item() == pytest.approx(float(expected), rel=1e-6)


def test_collapse_is_a_tiny_d_loss_except_for_wasserstein():
    assert losses.collapsed("non-saturating", 1e-5)
    assert not losses.collapsed("non-saturating", 0.3)
    assert not losses.collapsed("wasserstein", -50.0)


# --- DiffAugment --------------------------------------------------------------------------------
def test_translation_shifts_each_image_with_zero_fill():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8) + 1
    torch.manual_seed(3)
    y = translation(x)
    for b in range(2):
        found = False
        for dy in range(-1, 2):
            for dx in range(-1, 2):
                shifted = torch.zeros(8, 8)
                for i in range(8):
                    for j in range(8):
                        si, sj = i + dy, j + dx
                        if 0 <= si < 8 and 0 <= sj < 8:
                            shifted[i, j] = x[b, 0, si, sj]
                found |= torch.equal(shifted, y[b, 0])
        assert found, "not an integer shift of at most 1/8 of the size"


def test_cutout_zeroes_one_square_of_half_the_size_inside_the_image():
    x = torch.ones(16, 3, 8, 8)
    torch.manual_seed(0)
    y = cutout(x)
    zeroed = (y == 0).all(dim=1)  # (B, H, W): the same pixels in every channel
    assert ((y == 0) | (y == 1)).all()
    for b in range(16):
        area = int(zeroed[b].sum())
        assert 4 <= area <= 16  # a 4x4 square, clipped at the border
        rows, cols = zeroed[b].nonzero(as_tuple=True)
        assert rows.max() - rows.min() < 4 and cols.max() - cols.min() < 4


def test_diff_augment_is_differentiable_and_random_per_example():
    x = torch.rand(8, 3, 8, 8, requires_grad=True)
    y = diff_augment(x, "color,translation,cutout")
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not torch.equal(y[0], y[1] - (x[1] - x[0]))  # different transforms per example
    with pytest.raises(ValueError, match="unknown augmentation"):
        check_policy("translation,flip")


def test_tricks_add_instance_noise_and_leave_vectors_unaugmented():
    x = torch.zeros(1000, 2)
    assert torch.equal(Tricks(augment="translation")(x), x)  # 2-D points are not images
    noisy = Tricks(noise_std=0.5)(x)
    # the std of 2000 normal draws is within 1.6% (one sd): 10% is ~6 sd
    assert noisy.std().item() == pytest.approx(0.5, rel=0.1)
