"""Bits per sample of an audio model, beside two baselines scored on the same codes.

An audio model (contract.AudioModel) gives log p(x | label, local features) of quantized audio:
every amplitude is one of `levels` codes of its quantizer (genlab.sound: 256 mu-law codes, or
65536 linear 16-bit ones). Its number is

    bits per sample = sum over the split of -log p(x | ...) / (N T ln 2)

over N examples of T samples. A number of bits means little alone, so two baselines are fitted
on the run's TRAINING split and scored on the same codes of the evaluated split, in the same
call (van den Oord et al. 2016 compare WaveNet with an LPC-style predictor in the same way):

- unigram: p(k) = (n_k + 1) / (n + levels), the codes' frequencies in the training audio with
  add-one smoothing, the same for every sample: its bits are the entropy of the code histogram
  measured by cross-entropy on the evaluated split;
- linear prediction (LPC, the classic speech coder's predictor) of order p:

      x^_t = sum_{i=1..p} a_i x_{t-i}

  on the quantized amplitudes x = decode(code) (what the model sees of its past), fitted by the
  autocorrelation method: r_j = sum over training examples of sum_t x_t x_{t+j} (each example
  zero outside itself), then the normal equations R a = (r_1 .. r_p), R the Toeplitz matrix of
  r_0 .. r_{p-1}, solved by Levinson recursion (scipy.linalg.solve_toeplitz). The residual
  e_t = x_t - x^_t gets a Laplace(0, b) density, b = mean |e| (or a Gaussian, sigma^2 =
  mean e^2: whichever has the lower training NLL, 1 + ln 2b against (1 + ln 2 pi sigma^2) / 2),
  and code k has the residual's mass over its bin around the prediction:

      P(k) = F((edges[k+1] - x^_t) / b) - F((edges[k] - x^_t) / b)

  the outer bins taking the tails (edges[0] = -inf, edges[levels] = +inf), so the masses sum to
  one. Each example's first samples are predicted from zeros before it, as WaveNet's are.
  The order p is the model's receptive field (contract.ModelFacts `receptive_field`), so both
  see the same context, capped at LPC_MAX_ORDER and at T - 1; LPC_DEFAULT_ORDER otherwise.

Deviation: R's diagonal is loaded by WHITE_NOISE r_0 (the usual white-noise correction), so
the equations stay solvable for audio that is a few pure tones or silence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from genlab.contract import AudioModel, ModelFacts
from genlab.data.base import Dataset, batch_inputs

LPC_MAX_ORDER = 2048  # the longest predictor: a 2048-tap filter is ~0.26 s at 8 kHz
LPC_DEFAULT_ORDER = 32  # for a model that states no receptive field (4 ms at 8 kHz)
WHITE_NOISE = 1e-9  # r_0 *= 1 + WHITE_NOISE (-90 dB): keeps R positive definite in float64
SCALE_FLOOR = 1e-7  # the least residual scale, far below a 16-bit bin (3e-5): silence


# --- the two baselines ----------------------------------------------------------------------
@dataclass(frozen=True)
class Unigram:
    """One distribution over the codes for every sample: add-one smoothed training counts."""

    log2_p: np.ndarray  # (levels,)

    @classmethod
    def fit(cls, counts: np.ndarray) -> Unigram:
        smoothed = counts.astype(np.float64) + 1.0  # add-one: an unseen code keeps some mass
        return cls(np.log2(smoothed / smoothed.sum()))

    def bits(self, codes: np.ndarray) -> np.ndarray:
        """-log2 p(code) of every code, the shape of `codes`."""
        return -self.log2_p[codes]


@dataclass(frozen=True)
class LinearPredictor:
    """x^_t = sum_i a_i x_{t-i} with a Laplace or Gaussian residual of scale `scale`."""

    a: np.ndarray  # (p,) a_1 .. a_p
    residual: str  # "laplace" or "gaussian"
    scale: float  # Laplace b, or Gaussian sigma, in amplitude units

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(B, T) amplitudes -> (B, T) predictions, each from the p samples before it (zeros
        before the example's start)."""
        from scipy.signal import fftconvolve

        h = np.concatenate([[0.0], self.a])  # h_0 = 0: x_t never predicts itself
        return fftconvolve(x, h[None, :], axes=1)[:, : x.shape[1]]

    def bits(self, codes: np.ndarray, quantizer: Any) -> np.ndarray:
        """-log2 P(code) of every code of (B, T) `codes` given the codes before it."""
        edges = quantizer.edges().numpy()
        x = quantizer.decode(torch.from_numpy(codes)).double().numpy()
        prediction = self.predict(x)
        low = np.where(codes == 0, -np.inf, edges[codes]) - prediction
        high = np.where(codes == quantizer.levels - 1, np.inf, edges[codes + 1]) - prediction
        log_mass = LOG_MASS[self.residual](low / self.scale, high / self.scale)
        return -log_mass / math.log(2)


def laplace_log_mass(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """ln of the Laplace(0, 1) mass of [low, high] (low < high, either may be infinite),
    computed on the side of 0 where it does not cancel: F(z) = e^z / 2 for z < 0, else
    1 - e^-z / 2."""
    with np.errstate(all="ignore"):
        width = np.log(-np.expm1(low - high))  # ln(1 - e^-(high - low))
        right = math.log(0.5) - low + width  # 0 <= low: (e^-low - e^-high) / 2
        left = math.log(0.5) + high + width  # high <= 0: (e^high - e^low) / 2
        middle = np.log1p(-0.5 * np.exp(low) - 0.5 * np.exp(-high))  # low < 0 < high
    return np.where(low >= 0, right, np.where(high <= 0, left, middle))


def gaussian_log_mass(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """ln of the N(0, 1) mass of [low, high]; an interval right of 0 is mirrored to the left,
    where scipy's log_ndtr is accurate far into the tail."""
    from scipy.special import log_ndtr, ndtr

    mirror = low >= 0
    a, b = np.where(mirror, -high, low), np.where(mirror, -low, high)
    with np.errstate(all="ignore"):
        tail = log_ndtr(b) + np.log(-np.expm1(log_ndtr(a) - log_ndtr(b)))  # b <= 0
        middle = np.log1p(-(ndtr(a) + ndtr(-b)))  # a < 0 < b
    return np.where(b <= 0, tail, middle)


LOG_MASS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "laplace": laplace_log_mass,
    "gaussian": gaussian_log_mass,
}


def autocorrelation(x: np.ndarray, order: int) -> np.ndarray:
    """r_j = sum_b sum_t x[b, t] x[b, t + j] for j = 0..order, each row zero outside itself."""
    from scipy.fft import irfft, next_fast_len, rfft

    n = next_fast_len(x.shape[1] + order)  # no wrap-around for lags up to `order`
    spectrum = rfft(x, n, axis=1)
    return irfft((spectrum * spectrum.conj()).real, n, axis=1)[:, : order + 1].sum(axis=0)


def lpc_coefficients(r: np.ndarray) -> np.ndarray:
    """a_1 .. a_p from the autocorrelation r_0 .. r_p (all zeros for silent audio)."""
    from scipy.linalg import solve_toeplitz

    order = len(r) - 1
    if r[0] <= 0:
        return np.zeros(order)
    column = r[:order].copy()
    column[0] *= 1 + WHITE_NOISE
    return solve_toeplitz(column, r[1:])


def fit_baselines(train: Dataset, quantizer: Any, order: int, *, batch_size: int = 100):
    """(Unigram, LinearPredictor, samples) fitted on the codes of `train`: a first pass counts
    the codes and sums the autocorrelation, a second fits the residual's scale."""
    counts = np.zeros(quantizer.levels, dtype=np.int64)
    r = np.zeros(order + 1)
    for codes in code_batches(train, quantizer, batch_size):
        counts += np.bincount(codes.ravel(), minlength=quantizer.levels)
        r += autocorrelation(quantizer.decode(torch.from_numpy(codes)).double().numpy(), order)
    unfitted = LinearPredictor(lpc_coefficients(r), "laplace", 1.0)
    moments = np.zeros(3)  # sum |e|, sum e^2, count of the training residuals e
    for codes in code_batches(train, quantizer, batch_size):
        x = quantizer.decode(torch.from_numpy(codes)).double().numpy()
        e = x - unfitted.predict(x)
        moments += (np.abs(e).sum(), (e * e).sum(), e.size)
    count = int(moments[2])
    b = max(moments[0] / max(count, 1), SCALE_FLOOR)
    sigma = max(math.sqrt(moments[1] / max(count, 1)), SCALE_FLOOR)
    laplace_nll, gaussian_nll = 1 + math.log(2 * b), 0.5 * (1 + math.log(2 * math.pi * sigma**2))
    residual, scale = ("laplace", b) if laplace_nll <= gaussian_nll else ("gaussian", sigma)
    return Unigram.fit(counts), LinearPredictor(unfitted.a, residual, scale), count


def code_batches(data: Dataset, quantizer: Any, batch_size: int) -> Iterator[np.ndarray]:
    """The split's examples in order as int64 codes, (B, T) per batch."""
    for start in range(0, len(data), batch_size):
        indices = torch.arange(start, min(start + batch_size, len(data)))
        x = batch_inputs(data.batch(indices))  # (B, 1, T)
        yield quantizer.encode(x.reshape(len(indices), -1)).numpy()


# --- the model beside them ------------------------------------------------------------------
def context_order(model: AudioModel, length: int) -> int:
    """The LPC order for `model` on examples of `length` samples: its receptive field
    (ModelFacts), else LPC_DEFAULT_ORDER, at most LPC_MAX_ORDER and length - 1."""
    cls = type(model)
    stated = cls.facts(model.config).get("receptive_field") if isinstance(cls, ModelFacts) else None
    order = int(stated) if stated else LPC_DEFAULT_ORDER
    return max(1, min(order, LPC_MAX_ORDER, length - 1))


@torch.no_grad()
def audio_metrics(
    model: AudioModel,
    data: Dataset,
    reference: Callable[[], Dataset] | None,
    *,
    batch_size: int = 100,
    seed: int = 0,
) -> dict[str, Any]:
    """The model's bits per sample on `data` and, when `reference` loads the training split,
    the unigram's and the linear predictor's on the same codes (see the module docstring)."""
    from genlab.training.loop import forked_rng, to_device

    quantizer = model.quantizer
    length = int(np.prod(data.spec.shape))
    baselines = None
    if reference is not None:
        order = context_order(model, length)
        baselines = fit_baselines(reference(), quantizer, order, batch_size=batch_size)
    device = next(model.parameters()).device
    nats, unigram_bits, lpc_bits, samples = 0.0, 0.0, 0.0, 0
    was_training = model.training
    model.eval()
    with forked_rng(seed, device):
        for start in range(0, len(data), batch_size):
            batch = data.batch(torch.arange(start, min(start + batch_size, len(data))))
            nats -= float(model.conditional_log_prob(to_device(batch, device)).double().sum())
            x = batch_inputs(batch)
            samples += x.numel()
            if baselines is not None:
                codes = quantizer.encode(x.reshape(len(x), -1)).numpy()
                unigram_bits += float(baselines[0].bits(codes).sum())
                lpc_bits += float(baselines[1].bits(codes, quantizer).sum())
    model.train(was_training)
    result: dict[str, Any] = {
        "bits_per_sample": nats / (max(samples, 1) * math.log(2)),
        "quantizer": f"{quantizer.name}, {quantizer.levels} levels",
        "audio_samples": samples,
    }
    if baselines is not None:
        predictor, fitted_on = baselines[1:]
        result.update(
            unigram_bits_per_sample=unigram_bits / max(samples, 1),
            lpc_bits_per_sample=lpc_bits / max(samples, 1),
            lpc_order=len(predictor.a),
            lpc_residual=predictor.residual,
            baseline_training_samples=fitted_on,
        )
    return {**result, "definitions": {k: DEFINITIONS[k] for k in result}}


DEFINITIONS = {
    "bits_per_sample": (
        "-log2 p(x | label, local features) per audio sample, from model.conditional_log_prob "
        "over the split: total nats / (samples ln 2), over the codes of the model's quantizer"
    ),
    "quantizer": "the codes every bits_per_sample here counts (the model's quantizer)",
    "audio_samples": "audio samples (examples x T) in the means of the bits per sample",
    "unigram_bits_per_sample": (
        "baseline: -log2 of the code's add-one smoothed frequency in the training split's "
        "audio, mean over the split's samples (the code histogram's cross-entropy)"
    ),
    "lpc_bits_per_sample": (
        "baseline: a linear predictor of order lpc_order fitted on the training split "
        "(autocorrelation method) with a lpc_residual residual; -log2 of the residual's mass "
        "over the code's bin around the prediction, mean over the split's samples"
    ),
    "lpc_order": "past samples the linear predictor reads: the model's receptive field, capped",
    "lpc_residual": "the residual density (laplace or gaussian) with the lower training NLL",
    "baseline_training_samples": "training-split samples the baselines were fitted on",
}
