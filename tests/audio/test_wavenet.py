"""WaveNet: causality, the receptive field, normalized outputs, fast == naive, conditioning."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from genlab.audio.wavenet import (
    WaveNet,
    WaveNetConfig,
    contour_frames,
    mixture_log_prob,
    parse_melody,
    receptive_field,
)
from genlab.errors import GenlabError
from genlab.sound import LINEAR_16, MU_LAW

SMALL = {"residual_channels": 6, "dilation_channels": 6, "skip_channels": 8, "head_channels": 32}


def build(**kw) -> WaveNet:
    config = WaveNetConfig(data_shape=(1, 64), **{**SMALL, **kw})
    torch.manual_seed(0)
    return WaveNet(config).double().eval()


def input_gradient(model: WaveNet, t: int, length: int = 96) -> torch.Tensor:
    """|d (sum of the head's outputs at t) / d (the network's input)| per position (length,)."""
    codes = torch.randint(
        model.quantizer.levels, (1, length), generator=torch.Generator().manual_seed(1)
    )
    h = model.inputs(codes).detach().requires_grad_(True)  # position s holds the code of s - 1
    labels = torch.zeros(1, dtype=torch.long) if model.conditional else None
    u = model.features(torch.rand(1, 2, length // 8 + 1, dtype=torch.float64), length)
    model.network(h, labels, u)[0, :, t].sum().backward()
    return h.grad[0].abs().sum(0)


ARCHITECTURES = [
    {"stacks": 1, "layers": 4, "kernel": 2},
    {"stacks": 2, "layers": 3, "kernel": 2},
    {"stacks": 1, "layers": 3, "kernel": 3},
    {"stacks": 2, "layers": 2, "kernel": 3, "output": "logistic_mixture", "mixtures": 2},
]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_outputs_depend_on_exactly_the_receptive_field_of_past_samples(arch):
    """Causality and the receptive field by gradients: the output at t (the distribution of
    sample t) reads network positions t - R + 1 .. t, i.e. samples t - R .. t - 1, and nothing
    from t on; R = (k - 1) * stacks * (2^L - 1) + 1."""
    model = build(**arch, num_classes=3, local_channels=2, local_hop=8)
    r = receptive_field(model.config)
    assert r == (arch["kernel"] - 1) * arch["stacks"] * (2 ** arch["layers"] - 1) + 1
    assert model.facts(model.config)["receptive_field"] == r
    for t in (0, 5, r - 1, 80):
        support = (input_gradient(model, t) > 0).nonzero()[:, 0]
        assert support.tolist() == list(range(max(0, t - r + 1), t + 1)), t


def test_the_facts_give_the_receptive_field_in_samples_and_milliseconds():
    config = WaveNetConfig(stacks=2, layers=10, kernel=2, sample_rate=8000)
    facts = WaveNet.facts(config)
    assert facts["receptive_field"] == 2047  # 2 stacks of dilations 1 .. 512
    assert facts["receptive_field_ms"] == pytest.approx(2047 / 8)


def test_changing_a_sample_changes_no_earlier_prediction():
    model = build(stacks=2, layers=3)
    codes = torch.randint(256, (2, 64), generator=torch.Generator().manual_seed(0))
    changed = codes.clone()
    changed[:, 30:] = (changed[:, 30:] + 7) % 256
    a, b = model.outputs(codes, None, None), model.outputs(changed, None, None)
    assert torch.equal(a[..., :31], b[..., :31])  # the prediction of sample 30 reads 0 .. 29
    assert not torch.equal(a[..., 31:], b[..., 31:])


def test_mu_law_probabilities_of_the_256_codes_sum_to_one():
    model = build(stacks=1, layers=3)
    codes = torch.randint(256, (1, 20), generator=torch.Generator().manual_seed(0))
    out = model.outputs(codes, None, None)[..., 7:8].expand(256, -1, -1)  # (256, 256, 1)
    log_p = model.code_log_probs(torch.arange(256)[:, None], out)  # every code at position 7
    assert model.quantizer is MU_LAW
    assert torch.logsumexp(log_p[:, 0], dim=0).abs() < 1e-12


def test_the_logistic_mixture_probabilities_of_the_65536_codes_sum_to_one():
    edges = LINEAR_16.edges()
    codes = torch.arange(LINEAR_16.levels)[None]  # (1, 65536)
    cases = [
        [[0.3, -1.0], [0.01, -0.4], [-9.0, -5.0]],  # sharp components
        [[0.0, 2.0], [1.3, -2.0], [-1.0, 0.5]],  # locations outside [-1, 1], wide scales
        [[1.0, 0.0], [0.5, 0.5], [-16.0, -20.0]],  # at and below the log-scale floor
    ]
    for params in cases:
        p = torch.tensor(params, dtype=torch.float64).reshape(6, 1).expand(6, len(codes[0]))
        log_p = mixture_log_prob(codes, p[None], edges)
        assert torch.isfinite(log_p).all()
        assert torch.logsumexp(log_p[0], dim=0).abs() < 1e-9


def test_the_mixture_bin_probability_is_the_cdf_difference():
    """P(k) = sum_j pi_j [sigma((e_{k+1} - mu_j) / s_j) - sigma((e_k - mu_j) / s_j)], the outer
    codes taking the tails."""
    edges = LINEAR_16.edges().tolist()
    logits, loc, log_s = [0.2, -0.3], [0.1, -0.2], [-3.0, -4.0]
    params = torch.tensor(logits + loc + log_s, dtype=torch.float64)[None, :, None]  # (1, 6, 1)
    weights = torch.softmax(torch.tensor(logits, dtype=torch.float64), 0).tolist()

    def cdf(x: float, m: float, s: float) -> float:
        return 1 / (1 + math.exp(-(x - m) / math.exp(s))) if math.isfinite(x) else float(x > 0)

    for code in (0, 1000, 36000, 65535):
        lo = -math.inf if code == 0 else edges[code]
        hi = math.inf if code == 65535 else edges[code + 1]
        expected = sum(
            w * (cdf(hi, m, s) - cdf(lo, m, s)) for w, m, s in zip(weights, loc, log_s, strict=True)
        )
        got = float(mixture_log_prob(torch.tensor([[code]]), params, LINEAR_16.edges()).exp())
        assert got == pytest.approx(expected, rel=1e-6)


SAMPLERS = [
    {"stacks": 2, "layers": 3},
    {"stacks": 1, "layers": 3, "kernel": 3, "num_classes": 4},
    {"stacks": 2, "layers": 2, "output": "logistic_mixture", "mixtures": 3, "num_classes": 3},
    {"stacks": 2, "layers": 3, "num_classes": 3, "local_channels": 2, "local_hop": 8},
    {"stacks": 1, "layers": 4, "output": "logistic_mixture", "local_channels": 2, "local_hop": 8},
]


@pytest.mark.parametrize("arch", SAMPLERS)
def test_fast_and_naive_samplers_give_the_same_samples(arch):
    """The same uniforms give the same codes on both paths: exact equality. In float64 the two
    paths' outputs agree to ~1e-15, so no uniform can fall between their CDFs (in float32 a
    uniform within ~1e-7 of a CDF step could, once in millions of draws)."""
    model = build(**arch)
    n, length = 3, 50  # longer than the receptive fields (15, 15, 7, 15, 16): the queues wrap
    labels = torch.tensor([0, 2, 1]) if model.conditional else None
    features = (
        torch.rand(n, 2, 7, generator=torch.Generator().manual_seed(2)) if model.local else None
    )
    for temperature in (1.0, 0.7, 0.0):
        runs = [
            model.synthesize(
                n,
                length,
                generator=torch.Generator().manual_seed(5),
                labels=labels,
                features=features,
                temperature=temperature,
                fast=fast,
            )
            for fast in (True, False)
        ]
        assert runs[0].shape == (n, 1, length)
        assert torch.equal(runs[0], runs[1]), temperature
        codes = model.quantizer.encode(runs[0])
        assert len(codes.unique()) > (1 if temperature else 0)


def test_greedy_samples_are_the_most_likely_codes_of_the_training_network():
    """The samplers and the training-time forward pass are one function: at temperature 0 every
    sampled code is the argmax of `outputs` (teacher-forced on the sampled codes) there."""
    model = build(stacks=2, layers=3, num_classes=3, local_channels=2, local_hop=8)
    labels, c = torch.tensor([0, 2]), torch.rand(2, 2, 6, dtype=torch.float64)
    x = model.synthesize(2, 40, labels=labels, features=c, temperature=0.0)
    codes = model.quantizer.encode(x[:, 0])
    assert torch.equal(model.outputs(codes, labels, c).argmax(dim=1), codes)


def test_sample_follows_its_options():
    model = build(stacks=1, layers=3, num_classes=4, sample_rate=8000)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert model.sample(2, generator=g()).shape == (2, 1, 64)  # the training segment
    a = model.sample(2, generator=g(), seconds=0.01, labels=1)
    assert a.shape == (2, 1, 80) and a.abs().max() <= 1
    assert torch.equal(a, model.sample(2, generator=g(), seconds=0.01, labels=1, fast=False))
    assert not torch.equal(a, model.sample(2, generator=g(), seconds=0.01, labels=2))
    with pytest.raises(ValueError, match="labels"):
        model.sample(2, generator=g(), labels=4)
    with pytest.raises(ValueError, match="melody"):
        model.sample(1, generator=g(), melody="C4:0.1")


def test_global_conditioning_changes_the_outputs():
    model = build(stacks=1, layers=3, num_classes=3)
    codes = torch.randint(256, (1, 40), generator=torch.Generator().manual_seed(0))
    out = [model.outputs(codes, torch.tensor([y]), None) for y in range(3)]
    assert not torch.allclose(out[0], out[1]) and not torch.allclose(out[1], out[2])


def test_local_features_change_the_outputs_of_their_frames_onwards_only():
    """Frame j of the features covers samples [8 j, 8 j + 8) (hop 8): changing it changes the
    predictions from sample 8 j on (later ones read it through the receptive field), never
    earlier ones."""
    model = build(stacks=1, layers=3, local_channels=2, local_hop=8)
    codes = torch.randint(256, (1, 64), generator=torch.Generator().manual_seed(0))
    c = torch.rand(1, 2, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    changed = c.clone()
    changed[..., 3] += 0.5
    a, b = model.outputs(codes, None, c), model.outputs(codes, None, changed)
    assert torch.equal(a[..., :24], b[..., :24])
    assert not torch.allclose(a[..., 24:32], b[..., 24:32])


def test_log_prob_is_the_class_marginal_or_refused_without_features():
    x = torch.rand(2, 1, 64, dtype=torch.float64) * 2 - 1
    plain = build(stacks=1, layers=2)
    assert torch.equal(plain.log_prob(x), plain.conditional_log_prob(x))
    labelled = build(stacks=1, layers=2, num_classes=3)
    per_class = torch.stack(
        [labelled.conditional_log_prob((x, torch.full((2,), y))) for y in range(3)]
    )
    expected = torch.logsumexp(per_class, 0) - math.log(3)
    assert torch.allclose(labelled.log_prob(x), expected, rtol=0, atol=1e-10)
    local = build(stacks=1, layers=2, local_channels=2, local_hop=8)
    with pytest.raises(GenlabError, match="conditional_log_prob"):
        local.log_prob(x)
    c = torch.rand(2, 2, 8, dtype=torch.float64)
    assert local.conditional_log_prob((x, torch.zeros(2, dtype=torch.long), c)).shape == (2,)


def test_the_loss_is_nats_per_sample_and_falls_on_sine_waves():
    """A few dozen Adam steps on sines of random frequency and phase lower the NLL a lot."""
    torch.manual_seed(0)
    t = torch.arange(256)
    freq = torch.rand(16, 1) * 0.08 + 0.02  # cycles per sample
    x = (0.8 * torch.sin(2 * math.pi * freq * t + torch.rand(16, 1) * 6.28))[:, None]
    config = WaveNetConfig(data_shape=(1, 256), stacks=1, layers=5, **SMALL)
    model = WaveNet(config)
    out = model.loss(x)
    assert out["loss"].item() == pytest.approx(-model.conditional_log_prob(x).mean().item() / 256)
    assert out["bits_per_sample"].item() == pytest.approx(out["loss"].item() / math.log(2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = float(out["bits_per_sample"])
    for _ in range(40):
        optimizer.zero_grad()
        model.loss(x)["loss"].backward()
        optimizer.step()
    after = float(model.loss(x)["bits_per_sample"])
    assert before > 7.5 and after < before - 2, (before, after)


def test_melodies_parse_into_pitch_contours():
    notes = parse_melody("C4:0.5 E4:0.25 G#4:0.25 Bb3:0.5 R:0.25 72:0.25")
    assert notes == [(60, 0.5), (64, 0.25), (68, 0.25), (58, 0.5), (None, 0.25), (72, 0.25)]
    frames = contour_frames(parse_melody("C4:0.5 R:0.25 A4:0.25"), 5, 0.25)  # frames of 0.25 s
    assert torch.allclose(frames[0], torch.tensor([60, 60, 0, 69, 0]) / 127)
    assert frames[1].tolist() == [1, 1, 0, 1, 0]  # after the melody: unvoiced
    for bad in ("C4", "H4:1", "C4:-1", "C4:x", "200:1", ""):
        with pytest.raises(ValueError, match="melody"):
            parse_melody(bad)


def test_a_contour_model_samples_a_melody_or_a_seeded_random_one():
    model = build(stacks=1, layers=3, local_channels=2, local_hop=8, sample_rate=800)
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    melody = model.sample(1, generator=g(0), melody="C4:0.05 E4:0.05")
    assert melody.shape == (1, 1, 80)  # the melody's 0.1 s at 800 Hz
    assert torch.equal(model.sample(2, generator=g(1)), model.sample(2, generator=g(1)))
    assert not torch.equal(model.sample(2, generator=g(1)), model.sample(2, generator=g(2)))
    other = dataclasses.replace(model.config, local_channels=3)
    with pytest.raises(ValueError, match="features"):
        WaveNet(other).sample(1, generator=g(0))


def test_visualize_writes_figures_and_wav_files(tmp_path):
    from genlab.data import load_dataset
    from genlab.sound import read_audio

    data = load_dataset("tones", "test", n=3, segment=512)
    config = dataclasses.replace(WaveNetConfig(), **SMALL, stacks=1, layers=3)
    from genlab.contract import config_for_data

    model = WaveNet(config_for_data(config, data.spec))
    paths = model.visualize(data, tmp_path, generator=torch.Generator().manual_seed(0))
    names = sorted(p.name for p in paths)
    assert names == [
        "sample-0.wav",
        "sample-1.wav",
        "sample-2.wav",
        "spectrograms.png",
        "waveforms.png",
    ]
    audio, rate = read_audio(tmp_path / "sample-0.wav")
    assert rate == 8000 and audio.shape == (1, 512)
