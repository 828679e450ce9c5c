"""Bits per sample and its two baselines (genlab.metrics.audio), on audio whose answers are
known: hand-counted codes, an AR(2) process, a model with a fixed distribution."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.signal import lfilter

from genlab.data.base import ArrayDataset, DataSpec
from genlab.metrics.audio import (
    DEFINITIONS,
    LOG_MASS,
    LPC_DEFAULT_ORDER,
    LinearPredictor,
    fit_baselines,
    gaussian_log_mass,
    laplace_log_mass,
)
from genlab.metrics.standard import standard_metrics
from genlab.sound import LINEAR_16, MU_LAW
from plugin.chirp import Chirp, ChirpConfig, load_hum


def audio(x: np.ndarray | torch.Tensor) -> ArrayDataset:
    """(N, T) amplitudes as an 8 kHz audio dataset of (N, 1, T) examples."""
    x = torch.as_tensor(x, dtype=torch.float32)
    return ArrayDataset(x[:, None], None, DataSpec("audio", (1, x.shape[1]), sample_rate=8000))


def ar2(examples: int, length: int, seed: int) -> np.ndarray:
    e = 0.01 * np.random.default_rng(seed).standard_normal((examples, length + 500))
    return lfilter([1.0], [1.0, -1.6, 0.8], e, axis=1)[:, 500:]  # x_t = 1.6 x_t-1 - 0.8 x_t-2 + e


def test_unigram_bits_are_a_hand_count():
    """Training codes with known counts; the unigram's bits on other codes are the mean of
    -log2 (n_k + 1) / (n + 256), computed here by hand."""
    train_codes = torch.tensor([[0, 0, 5, 255], [5, 5, 5, 128]])
    test_codes = np.array([[5, 0, 7, 128]])
    unigram, _, fitted_on = fit_baselines(audio(MU_LAW.decode(train_codes)), MU_LAW, 2)
    counts = {0: 2, 5: 4, 255: 1, 128: 1}  # 8 training samples
    by_hand = [-math.log2((counts.get(k, 0) + 1) / (8 + 256)) for k in test_codes[0]]
    assert fitted_on == 8
    assert unigram.bits(test_codes).mean() == pytest.approx(sum(by_hand) / 4, rel=1e-12)
    # its bits on the training codes themselves: the smoothed histogram's cross-entropy
    p = {k: (n + 1) / 264 for k, n in counts.items()}
    entropy = -sum(n * math.log2(p[k]) for k, n in counts.items()) / 8
    assert unigram.bits(train_codes.numpy()).mean() == pytest.approx(entropy, rel=1e-12)


@pytest.mark.parametrize("quantizer", [MU_LAW, LINEAR_16], ids=lambda q: q.name)
@pytest.mark.parametrize("residual", ["laplace", "gaussian"])
def test_code_masses_sum_to_one(quantizer, residual):
    """Every code's mass around a prediction, the outer bins taking the tails: they sum to 1
    for predictions anywhere (inside the range, at its edge, outside it)."""
    edges = quantizer.edges().numpy()
    low = np.concatenate([[-np.inf], edges[1:-1]])
    high = np.concatenate([edges[1:-1], [np.inf]])
    for prediction, scale in [(0.0, 0.01), (0.37, 0.2), (-0.999, 0.001), (1.5, 0.05)]:
        mass = np.exp(LOG_MASS[residual]((low - prediction) / scale, (high - prediction) / scale))
        assert mass.sum() == pytest.approx(1.0, abs=1e-9)


def test_log_masses_match_the_distributions_and_hold_in_the_tails():
    low = np.array([-3.0, -0.5, 0.2, 2.0, -np.inf, 1.0])
    high = np.array([-2.0, 0.5, 0.3, np.inf, -4.0, 1.0001])
    for log_mass, law in ((laplace_log_mass, stats.laplace), (gaussian_log_mass, stats.norm)):
        assert np.allclose(np.exp(log_mass(low, high)), law.cdf(high) - law.cdf(low), rtol=1e-9)
    # far in the tails, where a difference of CDFs is 0 (or 1 - 1) in float64
    far = laplace_log_mass(np.array([800.0, -801.0]), np.array([801.0, -800.0]))
    assert np.allclose(far, math.log(0.5) - 800 + math.log(1 - math.exp(-1)), rtol=1e-12)
    width = 1e-3  # the Gaussian's mass of [40, 40 + w]: close to the density there times w
    deep = gaussian_log_mass(np.array([40.0]), np.array([40.0 + width]))
    density = -0.5 * 40**2 - 0.5 * math.log(2 * math.pi) + math.log(width)
    assert deep[0] == pytest.approx(density, abs=0.03)  # the density falls 4% over the bin


@pytest.mark.parametrize("quantizer", [MU_LAW, LINEAR_16], ids=lambda q: q.name)
def test_lpc_recovers_an_ar2_process_and_beats_the_unigram(quantizer):
    """16 x 4096 samples of x_t = 1.6 x_t-1 - 0.8 x_t-2 + e: the coefficients come back within
    0.02 (their standard error is ~0.003, the zero-padded windows' bias ~0.004), the residual
    scale is the noise's, and the predictor needs far fewer bits than the unigram."""
    train, test = audio(ar2(16, 4096, seed=0)), audio(ar2(4, 4096, seed=1))
    unigram, predictor, _ = fit_baselines(train, quantizer, 2)
    assert np.allclose(predictor.a, [1.6, -0.8], atol=0.02)
    assert predictor.residual == "gaussian"  # the noise is Gaussian
    assert predictor.scale == pytest.approx(0.01, rel=0.05)
    codes = quantizer.encode(test.x[:, 0]).numpy()
    lpc_bits, unigram_bits = predictor.bits(codes, quantizer), unigram.bits(codes)
    assert np.isfinite(lpc_bits).all() and lpc_bits.mean() < unigram_bits.mean() - 1


def test_lpc_predicts_from_zeros_before_each_example():
    predictor = LinearPredictor(np.array([0.5, 0.25]), "laplace", 0.1)
    x = np.array([[1.0, 2.0, 4.0, 8.0]])
    assert np.allclose(predictor.predict(x), [[0.0, 0.5, 1.25, 2.5]])


def test_bits_per_sample_of_a_known_distribution_beside_the_baselines():
    """A model uniform over the 256 mu-law codes has exactly 8 bits per sample; on AR(2) audio
    both baselines do better, fitted on the training split (40 x 256 samples, not the 10 x 256
    of the test split), the predictor with the model's receptive field as its order."""
    model = Chirp(ChirpConfig(context=24)).eval()
    test = load_hum("test")
    result = standard_metrics(model, test, "test", reference=lambda: load_hum("train"))
    assert result["bits_per_sample"] == pytest.approx(8.0, abs=1e-12)
    assert result["audio_samples"] == 10 * 256 and result["baseline_training_samples"] == 40 * 256
    assert result["lpc_order"] == 24 and result["quantizer"] == "mu-law, 256 levels"
    assert result["lpc_bits_per_sample"] < result["unigram_bits_per_sample"] < 8
    assert result["test_loss"] == pytest.approx(math.log(256), rel=1e-6)  # nats per sample
    assert set(result["definitions"]) == set(result) - {"test_loss", "definitions"} - {
        "nll_nats", "nll_bound", "nll_examples", "bits_per_dim"
    }  # fmt: skip
    assert all(result["definitions"][k] == DEFINITIONS[k] for k in result["definitions"])


def test_order_caps_and_no_reference():
    """A receptive field longer than an example is capped at T - 1; a model that states none
    gets LPC_DEFAULT_ORDER; without the training split the baselines are left out."""
    long = standard_metrics(
        Chirp(ChirpConfig(context=5000)).eval(), load_hum("test"), "test",
        reference=lambda: load_hum("train"),
    )  # fmt: skip
    assert long["lpc_order"] == 255

    class Unstated(Chirp):
        facts = None  # no ModelFacts

    plain = standard_metrics(
        Unstated().eval(), load_hum("test"), "test", reference=lambda: load_hum("train")
    )
    assert plain["lpc_order"] == LPC_DEFAULT_ORDER
    alone = standard_metrics(Chirp().eval(), load_hum("test"), "test")
    assert alone["bits_per_sample"] == pytest.approx(8.0)
    assert "unigram_bits_per_sample" not in alone and "lpc_order" not in alone
