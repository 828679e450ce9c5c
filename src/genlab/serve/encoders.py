"""How samples travel in a response: the request's `format` picks an encoder from ENCODERS.

Each encoder says which modalities (contract.sample_kind: "image", "vector", "audio", ...) it
can write; None means any array. A new modality adds its encoders here (audio's wav, music's
midi), and the request schema, the format check and the model list follow from this dict: no
route changes. Text models answer with text or server-sent events instead (genlab.serve.service).

An encoder gets the samples and what the served model says about them (SampleInfo: an audio
model's sample rate, contract.AudioModel; the music vocabulary of a model whose token samples
are notes, genlab.tokenizers.FileTokenizer); one that needs those is offered only for models
that state them. Music is heard too: the wav encoder renders a music model's events
(`MUSIC_RATE`, the tokenizer's `render_audio`) and adds each sample's MIDI file.
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
    music: Any = None  # a FileTokenizer of notes: token samples are music (render_audio, midi)

    def sound_rate(self) -> int | None:
        """The rate of the WAV files its samples become: an audio model's own rate, the music
        renderer's for token samples that are notes, None for anything else."""
        return self.sample_rate or (MUSIC_RATE if self.music is not None else None)


@dataclass(frozen=True)
class Encoder:
    """Samples (n, ...) as float32 on the CPU, and the model's SampleInfo -> the response's
    fields."""

    encode: Callable[[torch.Tensor, SampleInfo], dict[str, Any]]
    modalities: frozenset[str] | None  # the sample kinds it writes; None: any array
    makes: str  # what a client gets, for messages ("images", "arrays")
    help: str
    needs_sound: bool = False  # only for samples that sound (SampleInfo.sound_rate)
    needs_music: bool = False  # only for token samples that are notes (SampleInfo.music)

    def accepts(self, modality: str, info: SampleInfo) -> bool:
        if self.needs_sound and not info.sound_rate():
            return False
        if self.needs_music and info.music is None:
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


def wav_file(sample: torch.Tensor, info: SampleInfo) -> tuple[bytes, float]:
    """One sample as a 16-bit mono WAV file and its length in seconds: audio (1, T) at the
    model's rate, or token ids (T,) of music rendered at MUSIC_RATE (genlab.sound.wav_bytes)."""
    from genlab.sound import wav_bytes

    rate = int(info.sound_rate() or 0)
    if not info.sample_rate:
        sample = torch.from_numpy(info.music.render_audio(sample.long().tolist(), rate))
    return wav_bytes(sample, rate), sample.shape[-1] / rate


def _wav(samples: torch.Tensor, info: SampleInfo) -> dict[str, Any]:
    """One 16-bit mono WAV per sample (wav_file) and its seconds; for music also each sample's
    MIDI file."""
    files = [wav_file(sample, info) for sample in samples]
    out = {"shape": list(samples.shape[1:]), "mime": WAV, "sample_rate": info.sound_rate()}
    out["audio"] = [_base64(data) for data, _ in files]
    out["seconds"] = [round(seconds, 6) for _, seconds in files]
    if info.music is not None:
        out["midi"] = _midi(samples, info)["midi"]
    return out


def _midi(samples: torch.Tensor, info: SampleInfo) -> dict[str, Any]:
    """One base64 standard MIDI file per sample of music events (the tokenizer's file_bytes)."""
    files = [_base64(info.music.file_bytes(row.long().tolist())) for row in samples]
    return {"shape": list(samples.shape[1:]), "mime": MIDI, "midi": files}


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


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
MIDI = "audio/midi"
MUSIC_RATE = 16000  # samples per second of rendered music
ENCODERS: dict[str, Encoder] = {
    "png": Encoder(_png, frozenset({"image"}), "images", "one base64 PNG per sample"),
    WAV_FORMAT: Encoder(
        _wav,
        frozenset({"audio", "text"}),
        "audio",
        "one base64 16-bit WAV per sample, with its mime type and sample_rate (music: rendered, "
        "and each sample's MIDI file as midi)",
        needs_sound=True,
    ),
    "midi": Encoder(
        _midi,
        frozenset({"text"}),
        "MIDI files",
        "music: one base64 standard MIDI file per sample",
        needs_music=True,
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
