"""Flow layers: exact inverses and log-determinants against brute-force Jacobians."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genlab.flows.layers import (
    ActNorm,
    AffineCoupling,
    InvConv1x1,
    Squeeze,
    channel_mask,
    checkerboard_mask,
    lu_weights,
    standard_normal_log_prob,
)


class ConvNet(nn.Module):
    """A tiny coupling network for images: (B, C, H, W) -> (B, 2C, H, W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(8, 2 * channels, 3, padding=1),
        )

    def forward(self, x):
        return self.body(x)


def mlp(dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, 16), nn.Tanh(), nn.Linear(16, 2 * dim))


def layers_for_images():
    torch.manual_seed(0)
    act = ActNorm(2)
    act.initialize(torch.randn(8, 2, 4, 4) * 3 + 1)
    return {
        "actnorm": act,
        "invconv": InvConv1x1(2),
        "coupling-checkerboard": AffineCoupling(checkerboard_mask(4, 4, 0), ConvNet(2)),
        "coupling-channel": AffineCoupling(channel_mask(2, 1, image=True), ConvNet(2)),
        "squeeze": Squeeze(),
    }


def layers_for_vectors():
    torch.manual_seed(0)
    act = ActNorm(3)
    act.initialize(torch.randn(16, 3) * 2 - 1)
    return {
        "actnorm": act,
        "invconv": InvConv1x1(3),
        "coupling": AffineCoupling(channel_mask(3, 0, image=False), mlp(3)),
    }


def brute_force_logdet(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """log|det| of the autograd Jacobian of one example, via slogdet, per example."""
    out = []
    for i in range(len(x)):
        xi = x[i : i + 1]

        def f(v, shape=xi.shape):
            return layer(v.view(shape))[0].flatten()

        jac = torch.autograd.functional.jacobian(f, xi.flatten())
        out.append(torch.linalg.slogdet(jac)[1])
    return torch.stack(out)


def _perturb(layer: nn.Module) -> None:
    """Random weights everywhere (zero-initialised last layers would make couplings trivial)."""
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))


@pytest.mark.parametrize("name", list(layers_for_images()))
def test_image_layers_invert_and_their_logdet_matches_slogdet(name):
    layer = layers_for_images()[name].double().eval()
    _perturb(layer)
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    y, logdet = layer(x)
    assert torch.allclose(layer.inverse(y), x, atol=1e-10)
    assert logdet.shape == (3,)
    assert torch.allclose(logdet, brute_force_logdet(layer, x), atol=1e-8)


@pytest.mark.parametrize("name", list(layers_for_vectors()))
def test_vector_layers_invert_and_their_logdet_matches_slogdet(name):
    layer = layers_for_vectors()[name].double().eval()
    _perturb(layer)
    x = torch.randn(5, 3, dtype=torch.float64)
    y, logdet = layer(x)
    assert torch.allclose(layer.inverse(y), x, atol=1e-10)
    assert torch.allclose(logdet, brute_force_logdet(layer, x), atol=1e-8)


def test_float32_round_trip_within_1e_4():
    for layer in [*layers_for_images().values()]:
        _perturb(layer)
        x = torch.randn(4, 2, 4, 4)
        # float32 there and back: a few ulps of |x| <= ~5 (measured <= 4.8e-7 over 300 seeds)
        assert (layer.inverse(layer(x)[0]) - x).abs().max() < 1e-4


def test_actnorm_initializes_to_zero_mean_unit_variance_on_its_first_batch():
    x = torch.randn(64, 3, 5, 5) * torch.tensor([0.5, 2.0, 7.0]).view(1, 3, 1, 1) + 4
    layer = ActNorm(3).train()
    y, _ = layer(x)
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    before = layer.bias.clone()
    layer(torch.randn(8, 3, 5, 5))  # later batches do not re-initialise
    assert torch.equal(layer.bias, before) and bool(layer.initialized)


def test_actnorm_statistics_are_fp32_when_its_input_is_bf16():
    """Under autocast ActNorm's first batch can arrive in bf16; its mean and std are still
    computed in fp32 (of those bf16 values), not rounded to bf16's 8 significant bits."""
    torch.manual_seed(0)
    x = (torch.randn(64, 3, 5, 5) * 3 + 1).bfloat16()
    layer, reference = ActNorm(3).train(), ActNorm(3).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layer(x)
    reference(x.float())
    assert layer.bias.dtype == layer.logs.dtype == torch.float32
    torch.testing.assert_close(layer.bias, reference.bias, rtol=0, atol=0)
    torch.testing.assert_close(layer.logs, reference.logs, rtol=0, atol=0)


def test_invconv_logdet_is_slogdet_of_its_weight():
    layer = InvConv1x1(4)
    _perturb(layer)
    x = torch.randn(2, 4, 3, 3)
    _, logdet = layer(x)
    expected = torch.linalg.slogdet(layer.weight())[1] * 9
    assert torch.allclose(logdet, expected.expand(2), atol=1e-5)


def test_batched_lu_weights_equal_each_layers_own_product():
    """The fast path (all of a level's W in one batch of ops) against the paper's formula,
    layer by layer: fp32 products of C = 6 terms, so within a few ulps."""
    torch.manual_seed(0)
    convs = [InvConv1x1(6) for _ in range(5)]
    for conv in convs:
        _perturb(conv)
    batched = lu_weights(convs)
    for conv, w in zip(convs, batched, strict=True):
        lower = conv.lower.tril(-1) + torch.eye(6)
        upper = conv.upper.triu(1) + torch.diag(conv.sign_s * conv.log_s.exp())
        torch.testing.assert_close(w, conv.p @ lower @ upper, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(w, conv.weight(), rtol=0, atol=0)  # the same code path
    x = torch.randn(2, 6, 3, 3)
    y, logdet = convs[2](x, batched[2])
    torch.testing.assert_close((y, logdet), convs[2](x), rtol=0, atol=0)


def test_invconv_mixes_in_fp32_under_bf16_autocast():
    """log|det W| = H W sum(log_s) holds for the fp32 W: a bf16-rounded W would mix with
    another matrix. Under autocast the mixing must equal the fp32 mixing exactly."""
    layer = InvConv1x1(4)
    _perturb(layer)
    x = torch.randn(2, 4, 3, 3)
    expected, _ = layer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, logdet = layer(x)
        w = layer.weight()
    assert got.dtype == w.dtype == logdet.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_coupling_scale_is_bounded_so_huge_outputs_stay_finite():
    net = mlp(2)
    with torch.no_grad():
        net[-1].bias.fill_(1e4)  # a wild network
    layer = AffineCoupling(channel_mask(2, 0, image=False), net, scale_clamp=2.0)
    y, logdet = layer(torch.randn(4, 2))
    assert torch.isfinite(y).all() and (logdet.abs() <= 2.0 + 1e-6).all()


def test_masks_and_normal_log_prob():
    m = checkerboard_mask(2, 2, 0)
    assert m.flatten().tolist() == [1, 0, 0, 1]
    assert channel_mask(4, 1, image=False).flatten().tolist() == [0, 0, 1, 1]
    z = torch.zeros(1, 3)
    assert standard_normal_log_prob(z).item() == pytest.approx(-1.5 * math.log(2 * math.pi))


def _actnorm_rank(rank: int, world: int, address: str, batches: torch.Tensor, out) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=address, rank=rank, world_size=world)
    try:
        layer = ActNorm(batches.shape[2])
        layer.initialize(batches[rank])
        out[rank] = torch.cat([layer.bias.detach(), layer.logs.detach()])
    finally:
        dist.destroy_process_group()


def test_actnorm_starts_from_the_global_batch_under_ddp(tmp_path):
    """Two ranks with different halves of a batch initialise ActNorm identically, to what one
    process gets from the whole batch (DDP synchronises parameters only when it wraps the
    model, before this data-dependent initialisation)."""
    import torch.multiprocessing as mp

    torch.manual_seed(0)
    batches = torch.randn(2, 16, 3, 4, 4) * torch.tensor([1.0, 3.0, 0.5]).view(1, 1, 3, 1, 1)
    batches[1] += 2.0  # the ranks see different data
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(
            _actnorm_rank,
            args=(2, f"file://{tmp_path / 'rendezvous'}", batches, out),
            nprocs=2,
            join=True,
        )
        ranks = [out[0], out[1]]
    whole = ActNorm(3)
    whole.initialize(batches.flatten(0, 1))
    expected = torch.cat([whole.bias.detach(), whole.logs.detach()])
    assert torch.equal(ranks[0], ranks[1])
    assert torch.allclose(ranks[0], expected, atol=1e-5)  # E[x^2] - E[x]^2 vs two-pass std
