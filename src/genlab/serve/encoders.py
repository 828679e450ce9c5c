"""How samples travel in a response: the request's `format` picks an encoder from ENCODERS.

Each encoder says which modalities (contract.sample_kind: "image", "vector", "audio", ...) it
can write; None means any array. A new modality adds its encoders here (audio's wav; MIDI's
next), and the request schema, the format check and the model list follow from this dict: no
route changes. Text models answer with text or server-sent events instead (genlab.serve.service).

An encoder gets the samples and what the served model says about them (SampleInfo: an audio
model's sample rate, contract.AudioModel); one that needs the sample rate is offered only for
models that state it.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class SampleInfo:
    """What a served model says about its samples that an encoder may need."""

    sample_rate: int | None = None  # audio: samples per second (contract.AudioModel)


@dataclass(frozen=True)
class Encoder:
    """Samples (n, ...) as float32 on the CPU, and the model's SampleInfo -> the response's
    fields."""

    encode: Callable[[torch.Tensor, SampleInfo], dict[str, Any]]
    modalities: frozenset[str] | None  # the sample kinds it writes; None: any array
    makes: str  # what a client gets, for messages ("images", "arrays")
    help: str
    needs_sample_rate: bool = False  # only for models whose SampleInfo has a sample rate

    def accepts(self, modality: str, info: SampleInfo) -> bool:
        if self.needs_sample_rate and not info.sample_rate:
            return False
        return self.modalities is None or modality in self.modalities


def _png(samples: torch.Tensor, info: SampleInfo) -> dict[str, Any]:
    from genlab.imaging import to_pil, to_uint8

    images = []
    for array in to_uint8(samples).numpy():  # (H, W, C) each, converted as one batch
        buffer = io.BytesIO()
        to_pil(array).save(buffer, format="PNG")
        images.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    return {"shape": list(samples.shape[1:]), "images": images}


def _wav(samples: torch.Tensor, info: SampleInfo) -> dict[str, Any]:
    """One 16-bit mono WAV per (1, T) sample at the model's rate (genlab.sound.wav_bytes)."""
    from genlab.sound import wav_bytes

    rate = int(info.sample_rate or 0)
    audio = [base64.b64encode(wav_bytes(sample, rate)).decode("ascii") for sample in samples]
    return {"shape": list(samples.shape[1:]), "mime": WAV, "sample_rate": rate, "audio": audio}


def _npy(samples: torch.Tensor, info: SampleInfo) -> dict[str, Any]:
    buffer = io.BytesIO()
    np.save(buffer, samples.numpy().astype(np.float32))
    return {
        "shape": list(samples.shape),
        "array": base64.b64encode(buffer.getvalue()).decode("ascii"),
    }


def _json(samples: torch.Tensor, info: SampleInfo) -> dict[str, Any]:
    return {"shape": list(samples.shape), "samples": samples.tolist()}


WAV = "audio/wav"  # the mime type of the wav encoder's files
WAV_FORMAT = "wav"  # its format name: also what a request with Accept: audio/wav answers
ENCODERS: dict[str, Encoder] = {
    "png": Encoder(_png, frozenset({"image"}), "images", "one base64 PNG per sample"),
    WAV_FORMAT: Encoder(
        _wav,
        frozenset({"audio"}),
        "audio",
        "one base64 16-bit WAV per sample, with its mime type and sample_rate",
        needs_sample_rate=True,
    ),
    "npy": Encoder(_npy, None, "arrays", "one base64 .npy of the whole (n, ...) float32 array"),
    "json": Encoder(_json, None, "arrays", "nested lists"),
}


def formats_for(modality: str, info: SampleInfo) -> list[str]:
    """The response formats that can carry samples of `modality` from a model that says
    `info`, in ENCODERS' order."""
    return [name for name, encoder in ENCODERS.items() if encoder.accepts(modality, info)]


def encode_samples(samples: torch.Tensor, fmt: str, info: SampleInfo) -> dict[str, Any]:
    """The response fields of `samples` in format `fmt` (a key of ENCODERS)."""
    return ENCODERS[fmt].encode(samples, info)
