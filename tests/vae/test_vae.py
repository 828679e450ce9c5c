"""VAE: closed-form KL, discretized likelihoods, IWAE bound, shapes, figures, config checks."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from genlab.data.base import ArrayDataset, DataSpec
from genlab.distributions import discretized_log_prob
from genlab.vae import VAE

ARCHS = ["mlp", "conv"]
LIKELIHOODS = ["bernoulli", "logistic", "gaussian"]


def tiny(**changes) -> VAE.Config:
    base = VAE.Config(
        data_shape=(1, 8, 8),
        latent_dim=3,
        channels=4,
        blocks_high=1,
        blocks_low=1,
        hidden=16,
        iwae_k=16,
        iwae_batch=64,
    )
    return dataclasses.replace(base, **changes)


def images(n: int = 6, shape=(1, 8, 8), seed: int = 0) -> torch.Tensor:
    """Data on the 8-bit grid, as every dataset delivers it."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), generator=g).float() / 255.0


def test_kl_closed_form_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(3, 4, generator=g)
    logvar = torch.randn(3, 4, generator=g) * 0.5
    eps = torch.randn(200_000, 3, 4, generator=g)
    z = mu + torch.exp(0.5 * logvar) * eps
    log_q = -0.5 * (eps.pow(2) + math.log(2 * math.pi) + logvar)
    log_p = -0.5 * (z.pow(2) + math.log(2 * math.pi))
    monte_carlo = (log_q - log_p).mean(0)  # (3, 4)
    closed = VAE.kl_divergence(mu, logvar)
    # seeded; 200,000 draws: the Monte Carlo mean's sd is ~sd(log q - log p) / 450 < 0.005
    torch.testing.assert_close(closed, monte_carlo, atol=0.02, rtol=0.02)


@pytest.mark.parametrize("kind", ["logistic", "gaussian"])
@pytest.mark.parametrize(
    ("loc", "log_scale"),
    [(0.5, 0.0), (0.3, -3.0), (0.0, -7.0), (1.2, -7.0), (0.5004, -7.0), (-4.0, -1.0), (0.7, 3.0)],
)
def test_discretized_likelihood_sums_to_one_over_256_levels(kind, loc, log_scale):
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    log_p = discretized_log_prob(
        levels,
        torch.full_like(levels, loc),
        torch.full_like(levels, log_scale),
        kind=kind,
    )
    assert torch.isfinite(log_p).all()
    assert log_p.logsumexp(0).exp().item() == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("kind", ["logistic", "gaussian"])
def test_discretized_likelihood_golden_values(kind):
    # Level 128 with a distribution centred on it, scale 1/255: the central bin holds
    # F(0.5) - F(-0.5) of the standard logistic / normal.
    x = torch.tensor([128 / 255.0], dtype=torch.float64)
    log_scale = torch.tensor([math.log(1 / 255.0)], dtype=torch.float64)
    log_p = discretized_log_prob(x, x, log_scale, kind=kind)
    if kind == "logistic":
        expected = 1 / (1 + math.exp(-0.5)) - 1 / (1 + math.exp(0.5))
    else:
        expected = math.erf(0.5 / math.sqrt(2))
    assert log_p.exp().item() == pytest.approx(expected, rel=1e-5)


def test_discretized_likelihood_gradients_are_finite_far_from_the_data():
    x = torch.tensor([0.0, 1.0, 0.5, 0.2])
    loc = torch.tensor([5.0, -5.0, 40.0, -40.0], requires_grad=True)
    log_scale = torch.full((4,), -7.0, requires_grad=True)
    for kind in ("logistic", "gaussian"):
        log_p = discretized_log_prob(x, loc, log_scale, kind=kind)
        (grad_loc, grad_scale) = torch.autograd.grad(log_p.sum(), [loc, log_scale])
        assert torch.isfinite(log_p).all()
        assert torch.isfinite(grad_loc).all() and torch.isfinite(grad_scale).all()


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_arch_and_likelihood_train_and_evaluate(arch, likelihood):
    torch.manual_seed(0)
    model = VAE(tiny(arch=arch, likelihood=likelihood))
    x = images()
    out = model.loss((x, torch.zeros(len(x), dtype=torch.long)))
    assert set(out) >= {"loss", "recon", "kl", "elbo"}
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    model.eval()
    g = torch.Generator().manual_seed(0)
    x = model.prepare(x, generator=g)
    log_p = model.log_prob(x, generator=g)
    assert log_p.shape == (len(x),) and torch.isfinite(log_p).all()
    assert model.log_prob(x[:1], generator=g, k=3).shape == (1,)
    samples = model.sample(5, generator=g)
    assert samples.shape == (5, 1, 8, 8)
    assert samples.min() >= 0 and samples.max() <= 1
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (len(x), 3)
    assert model.reconstruct(x).shape == x.shape
    assert model.interpolate(x[:2], x[2:4], steps=5).shape == (2, 5, 1, 8, 8)


def test_prepare_binarizes_reproducibly_for_bernoulli_only():
    x = images()
    model = VAE(tiny())
    a = model.prepare(x, generator=torch.Generator().manual_seed(1))
    b = model.prepare(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(VAE(tiny(likelihood="logistic")).prepare(x), x)


def test_log_prob_is_deterministic_given_a_generator():
    model = VAE(tiny()).eval()
    x = model.prepare(images(), generator=torch.Generator().manual_seed(0))
    a = model.log_prob(x, generator=torch.Generator().manual_seed(3))
    b = model.log_prob(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_iwae_bound_is_above_elbo_and_rises_with_k():
    torch.manual_seed(0)
    # A posterior that is far from the prior makes the bounds clearly different.
    model = VAE(tiny(arch="mlp", latent_dim=4)).eval()
    with torch.no_grad():
        model.encoder.net[-1].bias[4:].fill_(-3.0)  # small sigma: a poor proposal
    x = model.prepare(images(20), generator=torch.Generator().manual_seed(0))
    means = {}
    for k in (1, 8, 64):
        runs = [
            model.log_prob(x, generator=torch.Generator().manual_seed(s), k=k) for s in range(8)
        ]
        means[k] = torch.stack(runs).mean().item()
    # Each gap is several nats here; the seed-to-seed spread of a mean over 160 values is << 1.
    assert means[1] < means[8] < means[64]
    assert model.elbo(x, generator=torch.Generator().manual_seed(0)).mean() < means[64]


def test_log_prob_chunks_give_the_same_answer():
    model = VAE(tiny()).eval()
    x = model.prepare(images(4), generator=torch.Generator().manual_seed(0))
    small = VAE(dataclasses.replace(model.config, iwae_batch=5)).eval()
    small.load_state_dict(model.state_dict())
    a = model.log_prob(x, generator=torch.Generator().manual_seed(2), k=40)
    b = small.log_prob(x, generator=torch.Generator().manual_seed(2), k=40)
    # the decoder runs on chunks of 5 vs 40 samples: float32 log-weights of ~-50 nats move by a
    # few ulps (4e-6), inside assert_close's float32 default (1.3e-6 relative: 6e-5 here)
    torch.testing.assert_close(a, b)


def test_loss_options_train_k_free_bits_warmup_shift():
    torch.manual_seed(0)
    x = images(8)
    for changes in (
        {"train_k": 4},
        {"train_k": 1},
        {"prior": "normal", "train_k": 1, "free_bits": 0.5},
        {"prior": "normal", "train_k": 4},
        {"kl_warmup_steps": 10},
        {"shift": 2},
    ):
        model = VAE(tiny(**changes))
        out = model.loss(x)
        assert torch.isfinite(out["loss"]), changes
        # the logged terms always decompose the true ELBO
        torch.testing.assert_close(out["recon"] + out["kl"], -out["elbo"])
        out["loss"].backward()
    model = VAE(tiny(kl_warmup_steps=10))
    model.loss(x)
    assert model.num_steps.item() == 1  # the warm-up counter is a saved buffer
    assert "num_steps" in model.state_dict()


def test_shift_moves_images_and_keeps_their_content():
    model = VAE(tiny(shift=1))
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 3:5, 3:5] = 1.0  # a square away from the border survives any 1-pixel shift
    shifted = model._shift(x)
    assert shifted.shape == x.shape
    assert torch.equal(shifted.sum((1, 2, 3)), x.sum((1, 2, 3)))
    assert not torch.equal(shifted, x)


def test_visualize_writes_four_pngs(tmp_path):
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (12, 1, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.arange(12) % 3
    data = ArrayDataset(x, y, DataSpec(kind="image", shape=(1, 8, 8), num_classes=3))
    paths = VAE(tiny()).visualize(data, tmp_path, generator=g)
    names = sorted(p.name for p in paths)
    assert names == ["interpolations.png", "latent.png", "reconstructions.png", "samples.png"]
    for path in paths:
        assert path.exists()
        with Image.open(path) as image:
            assert image.size[0] > 8


@pytest.mark.parametrize(
    "changes",
    [
        {"latent_dim": 0},
        {"data_shape": (784,)},
        {"data_shape": (1, 30, 30)},  # conv halves twice
        {"arch": "transformer"},
        {"likelihood": "poisson"},
        {"dropout": 1.0},
        {"beta": -1.0},
        {"iwae_k": 0},
        {"shift": -1},
        {"blocks_low": -1},
    ],
)
def test_validate_rejects_bad_configs(changes):
    cfg = dataclasses.replace(VAE.Config(), **changes)
    with pytest.raises(ValueError):
        cfg.validate()
    with pytest.raises(ValueError):
        VAE(cfg)


def test_default_config_is_valid_and_declares_its_contract():
    cfg = VAE.Config()
    cfg.validate()
    assert cfg.data_shape == (1, 28, 28) and cfg.num_classes == 0
    assert cfg.iwae_k >= 200
    assert VAE.bound_name == "IWAE bound"
    assert "steps" in VAE.train_defaults
    assert VAE(tiny(arch="mlp", data_shape=(1, 30, 30))).sample(1).shape == (1, 1, 30, 30)


def test_vamp_prior_density_is_the_mixture_of_posteriors():
    model = VAE(tiny(prior="vamp", pseudo_inputs=5))
    g = torch.Generator().manual_seed(0)
    mu_k, logvar_k = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g) * 0.3
    z = torch.randn(7, 3, generator=g)
    components = torch.distributions.Independent(
        torch.distributions.Normal(mu_k, torch.exp(0.5 * logvar_k)), 1
    )
    brute = torch.logsumexp(components.log_prob(z[:, None, :]), 1) - math.log(5)
    torch.testing.assert_close(model.log_prior(z, (mu_k, logvar_k)), brute)
    standard = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    torch.testing.assert_close(model.log_prior(z, None), standard)
    # one component at N(0, I) is the standard normal prior
    torch.testing.assert_close(model.log_prior(z, (torch.zeros(1, 3), torch.zeros(1, 3))), standard)


def test_vamp_pseudo_inputs_start_from_the_first_training_batch():
    model = VAE(tiny(prior="vamp", pseudo_inputs=10))
    x = images(4)
    assert not bool(model.pseudo_initialized)
    model.eval()
    model.loss(x)  # evaluation never initialises
    assert not bool(model.pseudo_initialized)
    model.train()
    model.loss(x)
    assert bool(model.pseudo_initialized)
    expected = x.repeat(3, 1, 1, 1)[:10].clamp(0.05, 0.95)
    torch.testing.assert_close(torch.sigmoid(model.pseudo_logits.detach()), expected)
    before = model.pseudo_logits.detach().clone()
    model.loss(images(4, seed=1))  # only the first batch initialises
    assert torch.equal(model.pseudo_logits.detach(), before)
    assert "pseudo_initialized" in model.state_dict()


def test_free_bits_needs_the_normal_prior():
    with pytest.raises(ValueError, match="free_bits"):
        tiny(prior="vamp", free_bits=0.5).validate()


def test_vamp_prior_encodings_are_reused_only_while_the_weights_stay():
    """Sampling reuses the K pseudo-input encodings (a served one-sample request would
    otherwise encode them all); any change to a parameter makes them fresh again."""
    model = VAE(tiny(prior="vamp", pseudo_inputs=5)).eval()
    with torch.no_grad():
        first = model.prior_components()
        assert model.prior_components() is first  # reused
        model.pseudo_logits.add_(0.5)  # an in-place update, like an optimizer step
        fresh = model.prior_components()
        assert fresh is not first and not torch.equal(fresh[0], first[0])
        expected = model.encode(torch.sigmoid(model.pseudo_logits))
        assert torch.equal(fresh[0], expected[0]) and torch.equal(fresh[1], expected[1])
        model.load_state_dict({k: v + 0.01 for k, v in model.state_dict().items()})
        assert model.prior_components() is not fresh
    model.train()
    with torch.enable_grad():  # training builds the graph every time, never from the cache
        mu, _ = model.prior_components()
        assert mu.requires_grad


def test_compiled_training_loss_has_no_graph_break_and_equals_eager():
    """The loop's --compile path on the VAE with a KL warm-up (its weight once came from
    `.item()`) and the VampPrior's first-batch initialisation (once a `bool(buffer)`): one graph,
    and the same loss as eager. Inductor fuses and reorders float ops, hence the speed-path
    tests' tolerance (rtol 1e-5); random draws fall back to eager's generator to be the same."""
    import copy
    import warnings

    import torch._dynamo
    import torch._inductor.config

    from genlab.training.loop import _compiled, _LossModule

    torch.manual_seed(0)
    model = VAE(tiny(arch="mlp", kl_warmup_steps=10, train_k=1)).train()
    eager = copy.deepcopy(model)
    x = images(6)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    with (
        torch._inductor.config.patch(fallback_random=True),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        compiled = _compiled(_LossModule(model), True)
        for step in range(2):  # the first step initialises the pseudo-inputs
            torch.manual_seed(step)
            got = compiled(x)
            torch.manual_seed(step)
            expected = eager.loss(x)
            for key in expected:
                torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-5)
    assert not [w for w in caught if "torch.compile failed" in str(w.message)]
    assert not torch._dynamo.utils.counters["graph_break"], dict(
        torch._dynamo.utils.counters["graph_break"]
    )
    assert int(model.num_steps) == int(eager.num_steps) == 2
