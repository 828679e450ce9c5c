"""How samples travel in a response: the request's `format` picks an encoder from ENCODERS.

Each encoder says which modalities (contract.sample_kind: "image", "vector", "text", ...) it can
write; None means any array. A new modality (audio, MIDI) adds its encoders here (wav, midi),
and the request schema, the format check and the model list follow from this dict: no route
changes. Text models answer with text or server-sent events instead (genlab.serve.service).
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
class Encoder:
    """Samples (n, ...) as float32 on the CPU -> the response's fields."""

    encode: Callable[[torch.Tensor], dict[str, Any]]
    modalities: frozenset[str] | None  # the sample kinds it writes; None: any array
    makes: str  # what a client gets, for messages ("images", "arrays")
    help: str

    def accepts(self, modality: str) -> bool:
        return self.modalities is None or modality in self.modalities


def _png(samples: torch.Tensor) -> dict[str, Any]:
    from genlab.imaging import to_pil, to_uint8

    images = []
    for array in to_uint8(samples).numpy():  # (H, W, C) each, converted as one batch
        buffer = io.BytesIO()
        to_pil(array).save(buffer, format="PNG")
        images.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    return {"shape": list(samples.shape[1:]), "images": images}


def _npy(samples: torch.Tensor) -> dict[str, Any]:
    buffer = io.BytesIO()
    np.save(buffer, samples.numpy().astype(np.float32))
    return {
        "shape": list(samples.shape),
        "array": base64.b64encode(buffer.getvalue()).decode("ascii"),
    }


def _json(samples: torch.Tensor) -> dict[str, Any]:
    return {"shape": list(samples.shape), "samples": samples.tolist()}


ENCODERS: dict[str, Encoder] = {
    "png": Encoder(_png, frozenset({"image"}), "images", "one base64 PNG per sample"),
    "npy": Encoder(_npy, None, "arrays", "one base64 .npy of the whole (n, ...) float32 array"),
    "json": Encoder(_json, None, "arrays", "nested lists"),
}


def formats_for(modality: str) -> list[str]:
    """The response formats that can carry samples of `modality`, in ENCODERS' order."""
    return [name for name, encoder in ENCODERS.items() if encoder.accepts(modality)]


def encode_samples(samples: torch.Tensor, fmt: str) -> dict[str, Any]:
    """The response fields of `samples` in format `fmt` (a key of ENCODERS)."""
    return ENCODERS[fmt].encode(samples)
