"""Glow as a whole, the variational dequantizer, and the NaN guard on a flow."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from genlab.data import load_dataset
from genlab.errors import TrainingDiverged
from genlab.flows.flow import VariationalDequantizer
from genlab.flows.glow import Glow, GlowConfig
from genlab.training.checkpoint import RunDir
from genlab.training.loop import TrainConfig, train

sys.path.insert(0, str(Path(__file__).parents[1]))
from test_cli import run_cli


def built(shape, noise=0.05, **kw) -> Glow:
    torch.manual_seed(0)
    model = Glow(GlowConfig(data_shape=shape, **kw)).double()
    x = torch.rand(8, *shape, dtype=torch.float64)
    model.train()
    model.log_prob(x)  # ActNorm's data-dependent initialisation
    model.eval()
    with torch.no_grad():  # zero-initialised convs would make every coupling and prior trivial
        for p in model.parameters():
            p.add_(noise * torch.randn_like(p))
    return model


def brute_logdet(f, x):
    jac = torch.autograd.functional.jacobian(
        lambda v: f(v.view(1, *x.shape)).flatten(), x.flatten()
    )
    return torch.linalg.slogdet(jac)[1]


def test_multiscale_glow_with_learned_priors_inverts_and_its_logdet_matches_slogdet():
    model = built((1, 4, 4), levels=2, depth=2, hidden=4)
    x = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    z, logdet = model.forward_flow(x)
    assert z.shape == (2, 16)
    assert torch.allclose(model.inverse_flow(z), x, atol=1e-10)
    for i in range(2):
        expected = brute_logdet(lambda v: model.forward_flow(v)[0], x[i])
        assert torch.allclose(logdet[i], expected, atol=1e-8)


def test_forward_flow_with_batched_weights_equals_layer_by_layer():
    """Glow computes each level's 1x1-convolution weights in one batch (layers.lu_weights);
    the slow path calls every layer on its own. Same numbers: fp64, tolerance 1e-12."""
    model = built((1, 8, 8), levels=2, depth=3, hidden=4)
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    z, logdet = model.forward_flow(x)
    h, slow_logdet, parts = x, torch.zeros(2, dtype=torch.float64), []
    for level, layers in enumerate(model.levels):
        for layer in layers:
            h, ld = layer(h)
            slow_logdet = slow_logdet + ld
        if level < len(model.levels) - 1:
            h, factored = h.chunk(2, dim=1)
            eps, ld = model.priors[level](factored, h)
        else:
            eps, ld = model.priors[level](h)
        parts.append(eps.flatten(1))
        slow_logdet = slow_logdet + ld
    torch.testing.assert_close(z, torch.cat(parts, dim=1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logdet, slow_logdet, rtol=1e-12, atol=1e-12)


def test_actnorm_initialises_once_and_a_loaded_model_does_not_again():
    """ActNorm's Python flag follows the saved buffer: a model loaded from a trained one's state
    must not re-initialise on its first training batch (its ActNorms would move)."""
    trained = built((1, 4, 4), levels=1, depth=2, hidden=4)
    torch.manual_seed(1)
    fresh = Glow(GlowConfig(data_shape=(1, 4, 4), levels=1, depth=2, hidden=4)).double()
    fresh.load_state_dict(trained.state_dict())
    fresh.train()
    fresh.log_prob(torch.rand(8, 1, 4, 4, dtype=torch.float64) * 5)  # a very different batch
    for (name, a), b in zip(trained.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_float32_round_trip_on_mnist_sized_images():
    # the default config; random weights as large as 0.05 make the 16-step flow ill-conditioned
    # (|z| > 100) in a way training does not (bench/flows_mnist5k.py reports the trained error)
    model = built((1, 28, 28), noise=0.02).float()
    x = torch.rand(3, 1, 28, 28) - 0.5
    z, _ = model.forward_flow(x)
    assert (model.inverse_flow(z) - x).abs().max() < 1e-4


def test_vector_glow_logdet_and_density_integrates_to_one():
    model = built((2,), depth=3, hidden=8)
    x = torch.randn(3, 2, dtype=torch.float64)
    _, logdet = model.forward_flow(x)
    assert torch.allclose(
        logdet[0], brute_logdet(lambda v: model.forward_flow(v)[0], x[0]), atol=1e-8
    )
    g = torch.linspace(-8, 8, 401, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).view(-1, 2)
    with torch.no_grad():
        mass = model.log_prob(grid).exp().sum() * (g[1] - g[0]) ** 2
    assert abs(float(mass) - 1) < 0.02


def test_temperature_zero_returns_the_mode_of_the_learned_priors():
    model = built((1, 8, 8), levels=2, depth=1, hidden=4)
    with torch.no_grad():
        a = model.sample(2, generator=torch.Generator().manual_seed(0), temperature=0.0)
        b = model.sample(2, generator=torch.Generator().manual_seed(1), temperature=0.0)
        mode = model.decode(torch.zeros(1, 64, dtype=torch.float64))
    assert torch.equal(a, b) and torch.allclose(a[:1], mode, atol=1e-12)
    assert not torch.allclose(mode, torch.full_like(mode, 0.5))  # the priors' means matter


def test_variational_dequantizer_density_is_a_change_of_variables():
    torch.manual_seed(0)
    deq = VariationalDequantizer((1, 2, 2), hidden=4).double()
    with torch.no_grad():
        for p in deq.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = torch.rand(1, 1, 2, 2, dtype=torch.float64)
    eps = torch.randn(1, 1, 2, 2, dtype=torch.float64)
    u, logdet = deq.transform(eps, x)
    assert ((u > 0) & (u < 1)).all()
    expected = brute_logdet(lambda e: deq.transform(e, x)[0], eps[0])
    assert torch.allclose(logdet[0], expected, atol=1e-8)


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_dequantization_bound_accounts_for_every_map_from_8_bit_data(alpha):
    # An untrained flow: identity couplings and an N(0, 1) prior; the 1x1 conv is a rotation
    # (log N is rotation invariant, log|det| = 0); ActNorm is not initialised in eval mode. So
    # log P(x) = log N(h) + log|dh/dy| - D log 256, with h = y - 1/2 or the logit map.
    model = Glow(GlowConfig(data_shape=(1, 4, 4), levels=1, depth=1, hidden=4, logit_alpha=alpha))
    model.eval()
    x = torch.randint(256, (5, 1, 4, 4)) / 255
    lp = model.log_prob(x, generator=torch.Generator().manual_seed(0))
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    y = (255 * x + u) / 256
    if alpha == 0:
        h, log_jac = y - 0.5, torch.zeros(5)
    else:
        p = alpha + (1 - 2 * alpha) * y
        h = torch.log(p / (1 - p))
        log_jac = torch.log((1 - 2 * alpha) / (p * (1 - p))).flatten(1).sum(1)
    log_normal = -0.5 * (h**2).flatten(1).sum(1) - 8 * math.log(2 * math.pi)
    assert torch.allclose(lp, log_normal + log_jac - 16 * math.log(256), atol=1e-4)


def test_nan_guard_names_the_flow_layer_that_produced_the_nan(tmp_path):
    data = load_dataset("toy2d:moons", "train")
    torch.manual_seed(0)
    model = Glow(GlowConfig(data_shape=(2,), depth=3, hidden=8))
    with torch.no_grad():
        model.levels[0][5].net.out.bias.fill_(float("nan"))  # step 2's coupling network
    run = RunDir(tmp_path / "run")
    run.create({"model": "glow", "model_config": {}})
    cfg = TrainConfig(steps=3, batch_size=16, log_every=1, checkpoint_every=10, val_split="")
    with pytest.raises(TrainingDiverged, match=r"layer levels\.0\.5\.net\.out \(Linear\)"):
        train(model, data, None, cfg, run, progress=False)


def test_train_evaluate_and_figures_from_the_command_line(tmp_path, capsys):
    run = tmp_path / "moons"
    tiny = ["-o", "depth=2", "-o", "hidden=8", "-o", "train.batch_size=32"]
    code, _, err = run_cli(
        capsys, "train", "glow", "--data", "toy2d:moons", "--steps", "30", "--out", run, "-q", *tiny
    )
    assert code == 0, err
    code, _, err = run_cli(capsys, "evaluate", run)
    assert code == 0, err
    result = json.loads((run / "eval.json").read_text())
    assert math.isfinite(result["nll_nats"]) and "bits_per_dim" not in result  # continuous data
    assert {"figures/density.png", "figures/grid.png"} <= set(result["figures"])
    image_run = tmp_path / "digits"
    tiny = ["-o", "levels=1", "-o", "depth=1", "-o", "hidden=4", "-o", "train.batch_size=16"]
    code, _, err = run_cli(
        capsys, "train", "glow", "--data", "digits", "--steps", "3", "--out", image_run, "-q", *tiny
    )
    assert code == 0, err
    code, _, err = run_cli(capsys, "evaluate", image_run)
    assert code == 0, err
    result = json.loads((image_run / "eval.json").read_text())
    assert 0 < result["bits_per_dim"] < 16
    assert {"figures/samples.png", "figures/temperatures.png"} <= set(result["figures"])


@pytest.mark.parametrize("name", ["glow", "realnvp"])
def test_encode_decode_map_8bit_images_to_z_and_back(name):
    from genlab.registry import model_class

    cls = model_class(name)
    torch.manual_seed(0)
    model = cls(cls.Config(data_shape=(1, 8, 8), levels=2, hidden=8))
    x = torch.randint(256, (4, 1, 8, 8)) / 255
    model.train()
    model.log_prob(x)  # ActNorm's data-dependent initialisation
    model.eval()
    with torch.no_grad():
        z = model.encode(x)
        assert z.shape == (4, 64)
        assert (model.decode(z) - x).abs().max() < 1e-4
        assert torch.equal(model.encode(x), z)  # deterministic: no dequantization noise
