"""StyleGAN: truncation, style mixing, modulated convolution, lazy R1 and path-length
regularization, shapes, seeding, save/load, gradients and a short adversarial run."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from genlab.contract import AdversarialModel, GenerativeModel, Visualizable
from genlab.gan.losses import Tricks
from genlab.gan.stylegan import (
    GPU,
    StyleGAN,
    StyleGANConfig,
    blur_after_up,
    minibatch_stddev,
    modulated_conv2d,
)
from genlab.metrics.ppl import LatentGenerator, StyleGenerator

AUGMENT = Tricks(augment="translation,cutout,color", noise_std=0.1)


def tiny(**changes) -> StyleGANConfig:
    """8x8 images: 4x4 and 8x8 stages, 3 convs, num_ws = 4."""
    base = StyleGANConfig(
        data_shape=(1, 8, 8), z_dim=8, w_dim=8, mapping_layers=2, channel_base=32, channel_max=8
    )
    return dataclasses.replace(base, **changes)


def build(seed: int = 0, **changes) -> StyleGAN:
    torch.manual_seed(seed)
    return StyleGAN(tiny(**changes))


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int, shape=(1, 8, 8), seed: int = 0) -> torch.Tensor:
    return torch.rand(n, *shape, generator=seeded(seed))


# ---- the contract and the hooks ------------------------------------------------------------


def test_keeps_the_gan_contract_and_the_ppl_protocols():
    model = build()
    for protocol in (GenerativeModel, AdversarialModel, Visualizable):
        assert isinstance(model, protocol)
    assert isinstance(model, LatentGenerator) and isinstance(model, StyleGenerator)
    names = [name for name, _ in model.named_parameters()]
    assert names and all(n.startswith(("generator.", "discriminator.")) for n in names)
    buffers = dict(model.named_buffers())
    assert "generator.w_avg" in buffers and "generator.pl_mean" in buffers
    assert StyleGAN.trainer == "genlab.gan.train"


def test_train_defaults_are_valid_adversarial_loop_settings():
    from genlab.gan.train import TrainConfig

    TrainConfig(**StyleGAN.train_defaults).validate()


@pytest.mark.parametrize(
    "shape, resolution", [((1, 28, 28), 32), ((1, 8, 8), 8), ((1, 5, 5), 8), ((3, 33, 20), 64)]
)
def test_synthesis_resolution_is_the_next_power_of_two(shape, resolution):
    assert StyleGANConfig(data_shape=shape).resolution == resolution


@pytest.mark.parametrize(
    "change",
    [
        {"data_shape": (28, 28)},
        {"z_dim": 0},
        {"mapping_layers": 0},
        {"mapping_lr_mul": 0.0},
        {"style_mixing_prob": 1.5},
        {"w_avg_beta": -0.1},
        {"loss": "least-squares"},
        {"r1_gamma": -1.0},
        {"r1_every": 0},
        {"pl_weight": -1.0},
        {"pl_decay": 0.0},
        {"pl_batch_shrink": 0},
        {"channel_base": 4},  # no channels left at 8x8
        {"mbstd_channels": 3},  # does not divide the 8 channels at 4x4
    ],
)
def test_bad_configs_are_rejected(change):
    with pytest.raises(ValueError):
        tiny(**change).validate()


def test_default_and_gpu_configs_are_valid():
    StyleGANConfig().validate()
    gpu = StyleGANConfig(**GPU)
    gpu.validate()
    assert gpu.channels(32) > StyleGANConfig().channels(32)


# ---- truncation ----------------------------------------------------------------------------


def test_truncation_psi_zero_returns_the_mean_w_image():
    model = build().eval()
    with torch.no_grad():
        model.generator.w_avg.copy_(torch.randn(8))  # as if tracked during training
        mean_image = model.synthesis(model.generator.w_avg.expand(4, -1))
        for seed in (1, 2):  # two different z batches
            out = model.sample(4, generator=seeded(seed), truncation=0.0, noise="const")
            assert torch.equal(out, mean_image)
        plain = model.sample(4, generator=seeded(1), truncation=1.0, noise="const")
    assert not torch.equal(plain, mean_image)


def test_truncation_interpolates_towards_w_avg():
    model = build()
    model.generator.w_avg.copy_(torch.randn(8))
    w = torch.randn(5, 8)
    w_avg = model.generator.w_avg
    assert torch.allclose(model.truncate(w, 0.7), w_avg + 0.7 * (w - w_avg))
    assert torch.equal(model.truncate(w, 0.0), w_avg.expand(5, -1))
    with torch.no_grad():
        a = model.sample(3, generator=seeded(0), truncation=0.5)
        b = model.sample(3, generator=seeded(0), truncation=0.5)
        c = model.sample(3, generator=seeded(0))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1


def test_w_avg_tracks_the_mean_of_w_in_training_only():
    model = build(w_avg_beta=0.0)  # beta 0: w_avg becomes this batch's mean of w
    batch = images(6)
    model.eval()
    model.discriminator_loss(batch, Tricks(), 1)
    assert torch.equal(model.generator.w_avg, torch.zeros(8)), "evaluation moved w_avg"
    model.train()
    torch.manual_seed(3)
    model.training_ws(6, update_w_avg=True)
    torch.manual_seed(3)
    expected = model.mapping(torch.randn(6, 8)).mean(0)
    assert torch.allclose(model.generator.w_avg, expected, atol=1e-6)
    model = build(w_avg_beta=0.9)
    model.train()
    model.generator_loss(batch, Tricks(), 1)
    assert model.generator.w_avg.abs().sum() > 0


# ---- style mixing --------------------------------------------------------------------------


def test_style_mixing_uses_w1_before_and_w2_from_the_crossover_layer():
    model = build().eval()
    L = model.num_ws
    assert L == 4  # conv 4x4, up-conv 8x8, conv 8x8, + the last toRGB
    w1, w2, w3 = torch.randn(3, 2, 8)
    with torch.no_grad():
        for c in range(L + 1):
            ws = model.mix_styles(w1, w2, c)  # (B, L, w_dim)
            assert ws.shape == (2, L, 8)
            assert all(torch.equal(ws[:, i], w1 if i < c else w2) for i in range(L))
            # changing w2 changes the picture exactly when some layer uses it
            a = model.synthesis_mixed(w1, w2, c)
            b = model.synthesis_mixed(w1, w3, c)
            assert torch.equal(a, b) == (c >= L)
        assert torch.equal(model.synthesis_mixed(w1, w2, L), model.synthesis(w1))
        assert torch.equal(model.synthesis_mixed(w1, w2, 0), model.synthesis(w2))


def test_each_layer_reads_its_own_w_from_the_stack():
    model = build(data_shape=(1, 16, 16)).eval()  # 3 stages, num_ws = 6
    synthesis = model.generator.synthesis
    seen: dict[str, torch.Tensor] = {}
    for name, module in synthesis.named_modules():
        if name.endswith("affine"):
            module.register_forward_hook(
                lambda m, args, out, name=name: seen.update({name: args[0]})
            )
    ws = torch.randn(2, model.num_ws, 8)
    with torch.no_grad():
        model.synthesis(ws)
    for j in range(len(synthesis.convs)):
        assert torch.equal(seen[f"convs.{j}.affine"], ws[:, j])
    for i in range(len(synthesis.torgbs)):  # the toRGB of a resolution shares the next conv's w
        assert torch.equal(seen[f"torgbs.{i}.affine"], ws[:, 2 * i + 1])
    assert synthesis.layer_resolutions() == [4, 8, 8, 16, 16, 16]
    assert model.coarse_crossover() == 3


def test_training_mixes_two_latents_at_a_random_crossover():
    model = build(style_mixing_prob=1.0)
    crossovers = set()
    for seed in range(12):
        torch.manual_seed(seed)
        ws = model.training_ws(3).detach()
        changes = [i for i in range(1, model.num_ws) if not torch.equal(ws[:, i], ws[:, i - 1])]
        assert len(changes) == 1  # exactly one crossover c, 1 <= c < num_ws
        crossovers.add(changes[0])
    assert crossovers == {1, 2, 3}
    model = build(style_mixing_prob=0.0)
    ws = model.training_ws(3).detach()
    assert all(torch.equal(ws[:, i], ws[:, 0]) for i in range(model.num_ws))


def test_style_mixing_grid_has_the_sources_in_the_first_row_and_column():
    model = build().eval()
    z_a, z_b = torch.randn(2, 8), torch.randn(3, 8)
    with torch.no_grad():
        grid = model.style_mixing_grid(z_a, z_b, model.num_ws).view(3, 4, 1, 8, 8)
        img_a, img_b = model.generate(z_a), model.generate(z_b)
        assert torch.equal(grid[0, 0], torch.ones(1, 8, 8))
        assert torch.equal(grid[0, 1:], img_b) and torch.equal(grid[1:, 0], img_a)
        # Mixed cells are synthesized in batches of 3, img_a in a batch of 2: float32 sums may
        # run in another order, a few ulps of the O(1) activations (~5e-7); allclose's default
        # atol (1e-8) is below one ulp of a mid-grey pixel, so the tolerance is absolute.
        all_a = img_a[:, None].expand(-1, 3, -1, -1, -1)
        assert torch.allclose(grid[1:, 1:], all_a, rtol=0, atol=1e-5)
        grid = model.style_mixing_grid(z_a, z_b, 0).view(3, 4, 1, 8, 8)
        all_b = img_b[None].expand(2, -1, -1, -1, -1)  # the same batch shape: exact in practice
        assert torch.allclose(grid[1:, 1:], all_b, rtol=0, atol=1e-5)


# ---- modulated convolution -----------------------------------------------------------------


def brute_force_modulated_conv(x, weight, styles, demodulate, up):
    """One explicitly modulated (and demodulated) weight per sample, one conv per sample."""
    outs = []
    for b in range(x.shape[0]):
        w = weight * styles[b][None, :, None, None]  # w'_ijk = s_i w_ijk, (O, I, k, k)
        if demodulate:
            w = w / torch.sqrt((w**2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        if up:  # transposed stride-2 conv, then the [1, 3, 3, 1] filter (sum 4) per channel
            y = F.conv_transpose2d(x[b : b + 1], w.transpose(0, 1), stride=2)
            f = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=x.dtype)
            kernel = torch.outer(f, f) / 16
            y = F.pad(y, (1, 1, 1, 1))
            y = torch.stack(
                [F.conv2d(y[:, o : o + 1], kernel[None, None])[:, 0] for o in range(y.shape[1])],
                dim=1,
            )
        else:
            y = F.conv2d(x[b : b + 1], w, padding=weight.shape[-1] // 2)
        outs.append(y)
    return torch.cat(outs)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("up", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_equals_a_per_sample_conv_with_modulated_weights(fused, up, demodulate):
    g = seeded(0)
    x = torch.randn(3, 5, 6, 6, generator=g, dtype=torch.float64)
    weight = torch.randn(4, 5, 3, 3, generator=g, dtype=torch.float64)
    styles = torch.randn(3, 5, generator=g, dtype=torch.float64)
    out = modulated_conv2d(x, weight, styles, demodulate=demodulate, up=up, fused=fused)
    expected = brute_force_modulated_conv(x, weight, styles, demodulate, up)
    assert out.shape == ((3, 4, 12, 12) if up else (3, 4, 6, 6))
    assert torch.allclose(out, expected, rtol=1e-10, atol=1e-10)


def test_one_by_one_modulated_conv_equals_brute_force():
    g = seeded(1)
    x, weight, styles = (
        torch.randn(2, 3, 4, 4, generator=g),
        torch.randn(1, 3, 1, 1),
        torch.randn(2, 3),
    )
    out = modulated_conv2d(x, weight, styles, demodulate=False)
    # float32, 3 products of O(1) factors summed in another order: a few ulps (measured 1/100)
    assert torch.allclose(
        out, brute_force_modulated_conv(x, weight, styles, False, False), atol=1e-6
    )


def test_demodulation_gives_unit_variance_outputs_for_unit_variance_inputs():
    g = seeded(2)
    x = torch.randn(4, 32, 40, 40, generator=g)  # i.i.d. N(0, 1)
    weight = torch.randn(8, 32, 3, 3, generator=g)
    styles = torch.exp(torch.randn(4, 32, generator=g))  # very unequal styles per channel
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))  # away from the zero padding
    for fused in (False, True):
        out = modulated_conv2d(x, weight, styles, fused=fused)[inner]
        var = out.var(dim=(2, 3))  # (B, O)
        assert abs(float(var.mean()) - 1) < 0.05
        assert (var - 1).abs().max() < 0.25
    plain = modulated_conv2d(x, weight, 3 * styles, demodulate=False)[inner]
    assert plain.var() > 10  # without demodulation the scale of the styles comes through


def test_blur_after_up_keeps_the_mean_of_an_upsampled_constant():
    # what a stride-2 transposed conv with a centre tap makes of ones: a zero-stuffed image;
    # the [1, 3, 3, 1] filter with gain 4 fills the zeros back in
    stuffed = torch.zeros(1, 2, 11, 11)
    stuffed[..., 1::2, 1::2] = 1
    y = blur_after_up(stuffed)
    assert y.shape == (1, 2, 10, 10)
    assert torch.allclose(y[..., 2:-2, 2:-2], torch.ones(1, 2, 6, 6))


def test_fused_and_activation_scaling_models_give_the_same_images():
    a = build(data_shape=(1, 16, 16)).eval()
    b = StyleGAN(tiny(data_shape=(1, 16, 16), fused_modconv=True)).eval()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        z = torch.randn(3, 8)
        # grouped convolution vs scaled activations: other float32 sums, a few ulps of [0, 1]
        assert torch.allclose(a.generate(z), b.generate(z), atol=1e-5)


def test_minibatch_stddev_handles_any_batch_size():
    x = torch.randn(6, 8, 4, 4)
    out = minibatch_stddev(x, group_size=4, num_channels=2)  # group 3: largest divisor <= 4
    assert out.shape == (6, 10, 4, 4) and torch.equal(out[:, :8], x)
    groups = x.view(3, 2, 2, 4, 4, 4)  # (G, B/G, F, C/F, H, W): sample n is in group n % 2
    std = (groups.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(2, 3, 4))  # (B/G, F)
    assert torch.allclose(out[0, 8:, 0, 0], std[0]) and torch.allclose(out[3, 8:, 0, 0], std[1])
    assert minibatch_stddev(torch.randn(1, 8, 4, 4), 4, 1).isfinite().all()


# ---- regularizers --------------------------------------------------------------------------


def test_lazy_r1_is_added_on_multiples_of_r1_every_and_is_the_gradient_norm():
    model = build(r1_gamma=0.5, r1_every=4)
    batch = images(8)
    outs = {}
    for step in (0, 1, 3, 4, 8):
        torch.manual_seed(7)
        outs[step] = model.discriminator_loss(batch, Tricks(), step)
    assert ["r1" in out for out in outs.values()] == [True, False, False, True, True]
    # same seed: same fakes; the difference is the lazy R1 term, weighted by r1_every
    r1 = outs[4]["r1"]
    # the same main term in both (same seed, same shapes); the difference rounds once at the
    # loss's float32 ulp (~1e-7 for O(1) losses)
    assert torch.allclose(outs[4]["loss"] - outs[1]["loss"], 0.5 / 2 * r1 * 4, atol=1e-5)
    # brute force: the squared norm of dD/dx per example, mean over the batch
    x = (batch * 2 - 1).requires_grad_(True)
    (grad,) = torch.autograd.grad(model._discriminate(x).sum(), x)
    expected = torch.stack([g.pow(2).sum() for g in grad]).mean()
    assert torch.allclose(r1, expected, rtol=1e-5)  # sums of squares (no cancellation): ulps
    assert "r1" not in build(r1_gamma=0.0).discriminator_loss(batch, Tricks(), 0)


def test_r1_is_taken_through_the_tricks_with_respect_to_the_clean_real_image():
    model = build(r1_gamma=1.0, r1_every=1)
    batch = images(8)
    torch.manual_seed(5)
    r1 = model.discriminator_loss(batch, AUGMENT, 0)["r1"]
    torch.manual_seed(5)  # replay the same random draws: fakes first, then the real tricks
    with torch.no_grad():
        model.generator(model.training_ws(8, update_w_avg=True))
    x = (batch * 2 - 1).requires_grad_(True)
    (grad,) = torch.autograd.grad(model._discriminate(AUGMENT(x)).sum(), x)
    assert torch.allclose(r1, grad.pow(2).flatten(1).sum(1).mean(), rtol=1e-5)


def test_path_length_regularization_is_lazy_and_updates_pl_mean():
    model = build(pl_weight=2.0, pl_every=3, pl_batch_shrink=2)
    batch = images(8)
    torch.manual_seed(0)
    out = model.generator_loss(batch, Tricks(), 1)
    assert "pl" not in out and float(model.generator.pl_mean) == 0.0
    torch.manual_seed(0)
    out0 = model.generator_loss(batch, Tricks(), 0)
    a1 = float(model.generator.pl_mean)
    assert "pl" in out0 and torch.isfinite(out0["pl"]) and a1 > 0
    # same seed: the main term is the same, the rest is the weighted, lazy PL penalty (one
    # float32 rounding of an O(1) loss, ~1e-7)
    assert torch.allclose(out0["loss"] - out["loss"], 2.0 * out0["pl"] * 3, atol=1e-5)
    model.generator_loss(batch, Tricks(), 3)
    a2 = float(model.generator.pl_mean)
    assert a2 != a1  # an EMA of path lengths: a <- a + 0.01 (mean length - a)
    assert "generator.pl_mean" in model.state_dict()


def test_path_length_with_decay_one_is_the_mean_length_of_j_transpose_y():
    model = build(pl_decay=1.0)
    torch.manual_seed(1)
    penalty = model.path_length_penalty(3)
    a = model.generator.pl_mean.clone()
    torch.manual_seed(1)  # replay: the same W stacks, noise and y
    ws = model.training_ws(3)
    fake = model.generator(ws)
    y = torch.randn_like(fake) / math.sqrt(8 * 8)
    lengths = []
    for i in range(3):  # per example: J_w^T y, a (num_ws, w_dim) gradient
        (g,) = torch.autograd.grad((fake[i] * y[i]).sum(), ws, retain_graph=True)
        lengths.append(g[i].pow(2).sum(1).mean().sqrt())
    lengths = torch.stack(lengths)
    # float32 norms per example vs in one batch: ulps; the penalty subtracts the mean, so its
    # relative error grows by |length| / |length - mean| (~10 here): rtol 1e-4
    assert torch.allclose(a, lengths.mean(), rtol=1e-5)
    assert torch.allclose(penalty, (lengths - lengths.mean()).pow(2).mean(), rtol=1e-4, atol=1e-8)


def test_running_statistics_update_in_fp32_under_bf16_autocast():
    """w_avg and pl_mean are fp32 buffers fed by bf16 matmuls under autocast: they update from
    the values cast up (the buffer is never cast down, and lerp never mixes the two dtypes).

    Tolerance for w_avg: w is the mapping network's bf16 output (8 significant bits, relative
    error <= 2^-9 per rounding, ~6 roundings deep in 2 layers: < 2%); beta 0 makes w_avg that
    batch's mean of w. pl_mean is the norm of a gradient through the bf16 forward and backward
    passes of the whole generator (dozens of roundings), so only its dtype and its update are
    checked."""
    batch = images(8)
    fp32 = build(w_avg_beta=0.0, pl_weight=2.0, pl_every=1, pl_decay=1.0).train()
    bf16 = build(w_avg_beta=0.0, pl_weight=2.0, pl_every=1, pl_decay=1.0).train()
    torch.manual_seed(0)
    fp32.generator_loss(batch, Tricks(), 0)
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = bf16.generator_loss(batch, Tricks(), 0)
    assert torch.isfinite(out["loss"]) and "pl" in out
    a, b = fp32.generator.w_avg, bf16.generator.w_avg
    assert b.dtype == torch.float32
    assert (a - b).abs().max() <= 5e-2 * a.abs().max()
    pl_mean = bf16.generator.pl_mean
    assert pl_mean.dtype == torch.float32 and torch.isfinite(pl_mean) and pl_mean > 0


# ---- samples, data shapes, determinism -----------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 10, 12)])
def test_samples_are_seeded_in_unit_range_with_the_data_shape(shape):
    model = build(data_shape=shape, channel_base=64).eval()
    with torch.no_grad():
        a = model.sample(3, generator=seeded(1))
        b = model.sample(3, generator=seeded(1))
        c = model.sample(3, generator=seeded(2))
        z = model.sample_latent(3, generator=seeded(4))
        g1, g2 = model.generate(z), model.generate(z)
        const = model.sample(3, generator=seeded(4), noise="const")
        none = model.sample(3, generator=seeded(4), noise="none")
    assert a.shape == (3, *shape) and g1.shape == (3, *shape)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(g1, g2) and torch.equal(const, g1)  # generate: constant noise, psi 1
    assert none.shape == (3, *shape)
    with pytest.raises(ValueError):
        model.sample(2, noise="fresh")


def test_the_discriminator_sees_images_padded_with_black_to_the_synthesis_size():
    model = build(data_shape=(1, 28, 28), channel_base=64)
    seen = []
    model.discriminator.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    x = images(2, (1, 28, 28))
    model.loss(x)
    real = seen[0]
    assert real.shape == (2, 1, 32, 32)
    assert torch.equal(real[:, :, 2:30, 2:30], x * 2 - 1)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (real[:, :, border] == -1).all() and (seen[1][:, :, border] == -1).all()


def test_save_load_round_trip_reproduces_samples(tmp_path):
    from genlab.training.checkpoint import load_weights, save_weights

    model = build(data_shape=(1, 12, 12))
    model.train()
    model.discriminator_loss(images(4, (1, 12, 12)), Tricks(), 0)  # moves w_avg
    model.eval()
    save_weights(tmp_path / "w.safetensors", model.state_dict())
    rebuilt = StyleGAN(tiny(data_shape=(1, 12, 12)))
    rebuilt.load_state_dict(load_weights(tmp_path / "w.safetensors"), strict=True)
    rebuilt.eval()
    with torch.no_grad():
        for kwargs in ({}, {"truncation": 0.5, "noise": "const"}):
            a = model.sample(4, generator=seeded(3), **kwargs)
            b = rebuilt.sample(4, generator=seeded(3), **kwargs)
            assert torch.equal(a, b)


# ---- gradients and training ----------------------------------------------------------------


def test_each_players_loss_reaches_all_of_its_parameters_through_the_tricks():
    model = build(pl_weight=1.0, pl_every=2)
    batch = (images(8), torch.zeros(8, dtype=torch.long))  # (x, y) batches work too
    for step in (0, 1):  # with and without the lazy R1 term
        model.zero_grad(set_to_none=True)
        out = model.discriminator_loss(batch, AUGMENT, step)
        out["loss"].backward()
        for name, p in model.discriminator.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert all(p.grad is None for p in model.generator.parameters())  # fakes are detached
        assert set(out) >= {"loss", "d_real", "d_fake"}
    for step in (0, 1):  # with and without the lazy PL term
        model.zero_grad(set_to_none=True)
        model.generator_loss(batch, AUGMENT, step)["loss"].backward()
        for name, p in model.generator.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_evaluation_loss_reaches_every_parameter():
    model = build()
    out = model.loss(images(8))
    assert set(out) == {"loss", "d_loss", "g_loss", "d_real", "d_fake"}
    out["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_a_short_adversarial_run_keeps_losses_finite():
    model = build(r1_every=4, pl_weight=1.0, pl_every=4)
    x = images(64)
    opt_g = torch.optim.Adam(model.generator.parameters(), lr=2.5e-3, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=2.5e-3, betas=(0.0, 0.99))
    torch.manual_seed(0)
    for step in range(40):
        batch = x[torch.randint(0, 64, (16,))]
        opt_d.zero_grad(set_to_none=True)
        d_out = model.discriminator_loss(batch, AUGMENT, step)
        d_out["loss"].backward()
        opt_d.step()
        model.discriminator.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        g_out = model.generator_loss(batch, AUGMENT, step)
        g_out["loss"].backward()
        opt_g.step()
        model.discriminator.requires_grad_(True)
        for value in (*d_out.values(), *g_out.values()):
            assert torch.isfinite(value).all()
    assert torch.isfinite(model.generator.pl_mean) and model.generator.pl_mean > 0
    with torch.no_grad():
        assert torch.isfinite(model.eval().sample(4, generator=seeded(0))).all()


def test_visualize_writes_samples_truncation_and_style_mixing_figures(tmp_path):
    from PIL import Image

    model = build()
    paths = model.visualize(None, tmp_path, generator=seeded(0))  # type: ignore[arg-type]
    assert [p.name for p in paths] == ["samples.png", "truncation.png", "style_mixing.png"]
    assert all(p.exists() for p in paths)
    assert model.training  # the mode is restored
    with Image.open(paths[2]) as picture:  # 7 x 6 cells of 8x8 images, drawn 8x bigger
        assert picture.size == (8 * (7 * (8 + 2) + 2), 8 * (6 * (8 + 2) + 2))
