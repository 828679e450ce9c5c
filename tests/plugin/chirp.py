"""A tiny audio model for the plumbing tests (writers, serving, evaluation, `genlab info`),
registered only inside the tests that use it: a contract.AudioModel and a contract.ModelFacts.

Its likelihood is a fixed distribution, uniform over the 256 mu-law codes, so its bits per
sample are exactly 8 whatever the audio; its samples are a 440 Hz tone of amplitude 0.5 with a
seeded random phase; its "receptive field" is `context` samples. `load_hum` is a tiny audio
dataset to register beside it: an AR(2) process (a resonance near 1000 Hz at 8 kHz), which a
linear predictor predicts well and a unigram does not.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genlab.data.base import ArrayDataset, DataSpec, batch_inputs
from genlab.sound import MU_LAW

PITCH_HZ = 440.0
AR = (1.6, -0.8)  # x_t = 1.6 x_{t-1} - 0.8 x_{t-2} + e_t
HUM = {"train": (40, 0), "val": (8, 1), "test": (10, 2)}  # split -> (examples, seed)


@dataclasses.dataclass(frozen=True)
class ChirpConfig:
    data_shape: tuple[int, ...] = (1, 256)  # (1, T)
    sample_rate: int = 8000
    num_classes: int = 0
    context: int = 64  # the receptive field it states (samples)


class Chirp(nn.Module):
    Config = ChirpConfig
    data_kinds: ClassVar[tuple[str, ...]] = ("audio",)
    presets: ClassVar[dict[str, dict[str, Any]]] = {"gpu": {}}
    quantizer = MU_LAW

    def __init__(self, config: ChirpConfig | None = None):
        super().__init__()
        self.config = config or ChirpConfig()
        self.gain = nn.Parameter(torch.ones(()))

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @classmethod
    def facts(cls, config: ChirpConfig) -> dict[str, Any]:
        return {
            "receptive_field": config.context,
            "receptive_field_ms": 1000 * config.context / config.sample_rate,
        }

    def conditional_log_prob(self, batch: Any) -> Tensor:
        x = batch_inputs(batch)  # (B, 1, T)
        return torch.full((len(x),), -x[0].numel() * math.log(256), dtype=torch.float64)

    def log_prob(self, x: Tensor, *, generator: Any = None) -> Tensor:
        return self.conditional_log_prob(x)

    def loss(self, batch: Any) -> dict[str, Tensor]:
        x = batch_inputs(batch)
        nats = -self.conditional_log_prob(batch).float().mean() / x[0].numel()
        return {"loss": nats + 0 * self.gain}

    def sample(self, n: int, *, generator: Any = None) -> Tensor:
        phase = torch.rand(n, 1, 1, generator=generator) * 2 * math.pi
        t = torch.arange(self.config.data_shape[-1]) / self.sample_rate
        return 0.5 * self.gain * torch.sin(2 * math.pi * PITCH_HZ * t + phase)  # (n, 1, T)


def load_hum(split: str = "train", *, segment: int = 256) -> ArrayDataset:
    """(examples, 1, segment) of the AR(2) process AR driven by N(0, 0.01^2), each example
    started 200 samples in (past the start-up), seeded per split; 8 kHz, unlabelled."""
    from scipy.signal import lfilter

    count, seed = HUM[split]
    noise = torch.randn(count, segment + 200, generator=torch.Generator().manual_seed(seed))
    x = lfilter([1.0], [1.0, -AR[0], -AR[1]], 0.01 * noise.double().numpy(), axis=1)[:, 200:]
    spec = DataSpec("audio", (1, segment), sample_rate=8000)
    return ArrayDataset(torch.from_numpy(x).float()[:, None], None, spec)
