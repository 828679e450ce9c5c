"""The few sound operations genlab needs: quantizing amplitudes, reading, resampling and
writing audio, and waveform/spectrogram figures (like genlab.imaging for pictures).

Quantizers. An amplitude x in [-1, 1] becomes one of `levels` integer codes. Both quantizers
place `levels` evenly spaced bin values c_k = 2k / (levels - 1) - 1 (k = 0..levels-1, so the
outer values are exactly -1 and 1) in a companded space y = F(x), with bin edges halfway between
neighbouring values, and map everything back to amplitudes:

- "mu-law" (ITU-T G.711, as in WaveNet, van den Oord et al. 2016, section 2.2):
  F(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu), mu = levels - 1 = 255; its inverse
  F^-1(y) = sign(y) ((1 + mu)^|y| - 1) / mu. Small amplitudes get fine bins, loud ones coarse.
- "linear": F(x) = x, 65536 levels (16-bit PCM resolution; the discretized logistic mixture of
  PixelCNN++ / Parallel WaveNet is over these bins).

`edges()` gives the bins' amplitude boundaries; `encode` is defined by them (a binary search),
so `encode(x) == k` exactly when `edges[k] <= x < edges[k+1]` (x = 1 falls in the last bin), and
`decode(k)` is the bin's value F^-1(c_k), which lies inside bin k.

Files. Reading uses soundfile (libsndfile: wav, flac, ogg), resampling scipy's polyphase
resampler; writing is plain 16-bit PCM WAV with the standard library. Every problem with an
input file is a one-line GenlabError naming it.
"""

from __future__ import annotations

import io
import math
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genlab.errors import GenlabError
from genlab.fileio import atomic_write


# --- mu-law companding ------------------------------------------------------------------------
def mu_law_compress(x: Tensor, mu: int = 255) -> Tensor:
    """F(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu), for x in [-1, 1] (-> [-1, 1])."""
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


def mu_law_expand(y: Tensor, mu: int = 255) -> Tensor:
    """F^-1(y) = sign(y) ((1 + mu)^|y| - 1) / mu, the inverse of mu_law_compress."""
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu


# --- quantizers -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Quantizer:
    """How an amplitude in [-1, 1] becomes one of `levels` codes ("mu-law" or "linear")."""

    name: str  # "mu-law" or "linear"
    levels: int  # 256 for mu-law (8 bit), 65536 for linear 16-bit

    def __post_init__(self) -> None:
        if self.name not in ("mu-law", "linear"):
            raise ValueError(f"unknown quantizer {self.name!r}; known: mu-law, linear")
        if self.levels < 2:
            raise ValueError(f"a quantizer needs at least 2 levels, got {self.levels}")
        _tables(self.name, self.levels)  # computed now, not inside a compiled function

    def edges(self) -> Tensor:
        """(levels + 1,) float64 amplitude boundaries: edges[0] = -1, edges[-1] = 1, increasing."""
        return _tables(self.name, self.levels)[0].clone()

    def encode(self, x: Tensor) -> Tensor:
        """Float amplitudes (any shape; clipped to [-1, 1]) -> int64 codes 0..levels-1."""
        edges = _tables(self.name, self.levels)[0].to(x.device)
        x = torch.nan_to_num(x.detach().to(torch.float64)).clamp(-1.0, 1.0)
        # the bin k with edges[k] <= x < edges[k+1]; x = 1 lands past the end: the last bin
        codes = torch.searchsorted(edges, x.contiguous(), right=True) - 1
        return codes.clamp(0, self.levels - 1)

    def decode(self, codes: Tensor) -> Tensor:
        """int codes -> float32 amplitudes: each bin's value F^-1(2k / (levels - 1) - 1)."""
        values = _tables(self.name, self.levels)[1].to(codes.device)
        return values[codes.long()]


_TABLES: dict[tuple[str, int], tuple[Tensor, Tensor]] = {}  # filled when a Quantizer is made


def _tables(name: str, levels: int) -> tuple[Tensor, Tensor]:
    """(edges float64 (levels + 1,), values float32 (levels,)) of a quantizer, computed once,
    when the Quantizer is made: a plain dict lookup afterwards, which torch.compile traces
    (it refuses functools.lru_cache inside a compiled loss)."""
    if (name, levels) not in _TABLES:
        _TABLES[name, levels] = _compute_tables(name, levels)
    return _TABLES[name, levels]


def _compute_tables(name: str, levels: int) -> tuple[Tensor, Tensor]:
    k = torch.arange(levels, dtype=torch.float64)
    centres = 2 * k / (levels - 1) - 1  # c_k in the companded space
    middles = (centres[1:] + centres[:-1]) / 2  # the inner edges, halfway between values
    edges = torch.cat([torch.tensor([-1.0], dtype=torch.float64), middles, torch.ones(1).double()])
    if name == "mu-law":
        mu = levels - 1
        edges, centres = mu_law_expand(edges, mu), mu_law_expand(centres, mu)
        edges[0], edges[-1] = -1.0, 1.0  # exact ends despite rounding
    return edges, centres.float()


MU_LAW = Quantizer("mu-law", 256)
LINEAR_16 = Quantizer("linear", 65536)


# --- reading and resampling -------------------------------------------------------------------
def read_audio(source: str | Path | bytes, *, name: str | None = None) -> tuple[np.ndarray, int]:
    """A wav/flac/ogg file (a path, or its bytes) -> (float32 (channels, n) in [-1, 1], rate).

    Missing, empty, corrupt, non-audio or zero-length input: GenlabError("<name>: <why>")."""
    import soundfile

    name = name or (str(source) if not isinstance(source, bytes) else "audio data")
    if isinstance(source, bytes):
        if not source:
            raise GenlabError(f"{name}: empty file")
        handle: object = io.BytesIO(source)
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise GenlabError(f"{name}: no such file")
        if path.stat().st_size == 0:
            raise GenlabError(f"{name}: empty file")
        handle = path
    try:
        data, rate = soundfile.read(handle, dtype="float32", always_2d=True)
    except (RuntimeError, TypeError, ValueError) as e:  # soundfile's LibsndfileError and kin
        why = getattr(e, "error_string", None) or str(e) or type(e).__name__  # libsndfile's why
        why = why.splitlines()[0] if why.strip() else type(e).__name__
        raise GenlabError(f"{name}: not a readable wav/flac/ogg file ({why})") from None
    if data.shape[0] == 0:
        raise GenlabError(f"{name}: no audio samples (zero length)")
    if not np.isfinite(data).all():
        raise GenlabError(f"{name}: holds non-finite samples (NaN or infinity)")
    return np.clip(data.T, -1.0, 1.0), int(rate)  # (channels, n)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(channels, n) -> (n,): the mean of the channels (a (n,) array is returned as is)."""
    audio = np.asarray(audio, dtype=np.float32)
    return audio if audio.ndim == 1 else audio.mean(axis=0, dtype=np.float32)


def resample(audio: np.ndarray, rate_from: int, rate_to: int) -> np.ndarray:
    """Resample along the last axis with scipy's polyphase filter (up/down reduced by their gcd)."""
    if rate_from <= 0 or rate_to <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_from} -> {rate_to}")
    audio = np.asarray(audio, dtype=np.float32)
    if rate_from == rate_to:
        return audio.copy()
    from scipy.signal import resample_poly

    g = math.gcd(rate_from, rate_to)
    return resample_poly(audio, rate_to // g, rate_from // g, axis=-1).astype(np.float32)


def load_audio(
    path: str | Path | bytes, sample_rate: int, *, name: str | None = None
) -> np.ndarray:
    """A file as mono float32 (n,) at `sample_rate`, clipped to [-1, 1]."""
    audio, rate = read_audio(path, name=name)
    mono = resample(to_mono(audio), rate, sample_rate)
    return np.clip(mono, -1.0, 1.0)


# --- writing ----------------------------------------------------------------------------------
def _samples_1d(samples: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(samples, Tensor):
        samples = samples.detach().float().cpu().numpy()
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2 and samples.shape[0] == 1:
        samples = samples[0]
    if samples.ndim != 1:
        raise ValueError(f"expected (T,) or (1, T) samples, got shape {samples.shape}")
    return samples


def wav_bytes(samples: Tensor | np.ndarray, sample_rate: int) -> bytes:
    """(T,) or (1, T) float amplitudes -> a mono 16-bit PCM WAV file's bytes (clipped to [-1, 1],
    x -> round(32767 x))."""
    pcm = np.round(np.clip(np.nan_to_num(_samples_1d(samples)), -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(int(sample_rate))
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def write_wav(path: str | Path, samples: Tensor | np.ndarray, sample_rate: int) -> Path:
    """Write `samples` as a 16-bit WAV at `path` (atomically; the parent folder is made)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = wav_bytes(samples, sample_rate)
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


# --- figures ----------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _panels(samples: Sequence, titles: Sequence[str] | None):
    """One row per sample: (figure, axes, samples as 1-D arrays, titles)."""
    arrays = [_samples_1d(s) for s in samples]
    if not arrays:
        raise ValueError("no samples to draw")
    titles = list(titles) if titles is not None else [f"sample {i}" for i in range(len(arrays))]
    fig, axes = _plt().subplots(len(arrays), 1, figsize=(8, 1.8 * len(arrays)), squeeze=False)
    return fig, axes[:, 0], arrays, titles


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    _plt().close(fig)
    return path


def waveform_figure(
    samples: Sequence, sample_rate: int, path: str | Path, *, titles: Sequence[str] | None = None
) -> Path:
    """Each (T,) sample's amplitude against time in seconds, one panel per sample, as PNG."""
    fig, axes, arrays, titles = _panels(samples, titles)
    for ax, x, title in zip(axes, arrays, titles, strict=False):
        ax.plot(np.arange(len(x)) / sample_rate, x, linewidth=0.5)
        ax.set_ylim(-1.05, 1.05)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("amplitude")
    axes[-1].set_xlabel("time (s)")
    return _save(fig, path)


def stft_magnitude(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int, int]:
    """|STFT| of a (T,) signal with a Hann window of about 32 ms (a power of two) and a hop of a
    quarter of it: (frames, window // 2 + 1) magnitudes, the window and the hop in samples."""
    window = 1 << max(4, round(math.log2(0.032 * sample_rate)))
    hop = window // 4
    x = np.pad(x, (0, max(0, window - len(x))))
    count = 1 + (len(x) - window) // hop
    frames = np.lib.stride_tricks.sliding_window_view(x, window)[::hop][:count]  # (F, window)
    return np.abs(np.fft.rfft(frames * np.hanning(window), axis=1)), window, hop


def spectrogram_figure(
    samples: Sequence, sample_rate: int, path: str | Path, *, titles: Sequence[str] | None = None
) -> Path:
    """Each (T,) sample's log-magnitude STFT (dB), time in s against frequency in Hz, as PNG."""
    fig, axes, arrays, titles = _panels(samples, titles)
    for ax, x, title in zip(axes, arrays, titles, strict=False):
        magnitude, window, hop = stft_magnitude(x, sample_rate)
        decibels = 20 * np.log10(magnitude.T + 1e-5)  # (frequencies, frames)
        seconds = (len(magnitude) * hop + window - hop) / sample_rate
        ax.imshow(
            decibels,
            origin="lower",
            aspect="auto",
            extent=(0.0, seconds, 0.0, sample_rate / 2),
            vmin=decibels.max() - 80,
            cmap="magma",
        )
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("frequency (Hz)")
    axes[-1].set_xlabel("time (s)")
    return _save(fig, path)
