"""Sample writers, one per data kind: how a batch of a model's samples becomes a file.

`WRITERS` maps a DataSpec kind (see genlab.data.base.MODALITIES) to its writer:

    "image"   (B, C, H, W) floats in [0, 1]  -> a PNG grid (genlab.imaging)
    "vector"  (B, D) points                  -> a PNG scatter plot of the first two coordinates
    "text"    (B, T) token ids               -> a UTF-8 text file, one decoded sample per block
                                               (music events: and a MIDI file beside it)
    "audio"   (B, 1, T) amplitudes in [-1, 1] -> one 16-bit mono WAV at the model's sample rate
                                               (contract.AudioModel), the samples one after
                                               another with AUDIO_GAP_S of silence between
    "environment" a list of Episodes (an agent's) -> an animated GIF, the episodes side by side

The kind comes from what the samples are (`genlab.contract.sample_kind(model)`, or the kind of
the data the model trains on), never from the tensor's shape: audio (B, 1, T) and a batch of
token ids can have the same rank. A new modality is one more entry here; a kind
without one is an error, not a silently missing file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from genlab.errors import GenlabError

TEXT_SEPARATOR = "\n" + "-" * 40 + "\n"  # between two samples in a text file
AUDIO_GAP_S = 0.5  # seconds of silence between two samples in a WAV file


@dataclass(frozen=True)
class SampleWriter:
    """`write(samples, path, model)` writes the samples (on the CPU) to `path`; `suffix` is
    the file type it writes (the training loop names its files step-NNNNNNNN + suffix)."""

    suffix: str
    write: Callable[[Tensor, Path, Any], None]


def _image_grid(samples: Tensor, path: Path, model: Any) -> None:
    from genlab.imaging import save_image

    if samples.dim() != 4:
        raise ValueError(f"image samples must be (B, C, H, W), got shape {tuple(samples.shape)}")
    save_image(samples.float(), path)


def _scatter(samples: Tensor, path: Path, model: Any) -> None:
    if samples.dim() != 2 or samples.shape[1] < 2:
        raise ValueError(f"a scatter plot needs (B, D >= 2) points, got {tuple(samples.shape)}")
    scatter_plot(samples[:, :2].float(), path)


def _decoded_text(samples: Tensor, path: Path, model: Any) -> None:
    """Token ids decoded with the model's tokenizer (its `tokenizer`, e.g. a TokenGenerator's),
    else written as numbers; samples separated by a line of dashes. A tokenizer whose tokens
    are another medium (genlab.tokenizers.FileTokenizer: music events) also writes them in
    its format beside the text (the same name with its suffix, e.g. .mid), one after another."""
    from genlab.fileio import atomic_write_text
    from genlab.tokenizers import FileTokenizer

    tokenizer = getattr(model, "tokenizer", None)
    rows = samples.tolist()
    if isinstance(tokenizer, FileTokenizer):
        tokenizer.write_file(rows, path.with_suffix(tokenizer.file_suffix))
    if tokenizer is None:
        texts = [" ".join(map(str, row)) for row in rows]
    else:
        texts = [tokenizer.decode(row) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, TEXT_SEPARATOR.join(texts) + "\n")


def _wav(samples: Tensor, path: Path, model: Any) -> None:
    """The samples one after another in one 16-bit WAV at the model's sample rate, separated
    by AUDIO_GAP_S seconds of silence."""
    import torch

    from genlab.contract import AudioModel
    from genlab.sound import write_wav

    if samples.dim() != 3 or samples.shape[1] != 1:
        raise ValueError(f"audio samples must be (B, 1, T), got shape {tuple(samples.shape)}")
    if not isinstance(model, AudioModel):
        raise ValueError("audio samples need the AudioModel that drew them: its sample rate")
    rate = int(model.sample_rate)
    gap = torch.zeros(round(AUDIO_GAP_S * rate))
    pieces = [part for sample in samples.float() for part in (gap, sample[0])][1:]
    write_wav(path, torch.cat(pieces), rate)


def _episodes(samples: Any, path: Path, model: Any) -> None:
    """An agent's episodes (genlab.data.environments.Episode) as one animated GIF."""
    from genlab.data.environments import episodes_gif

    episodes_gif(samples, path)


WRITERS: dict[str, SampleWriter] = {
    "image": SampleWriter(".png", _image_grid),
    "vector": SampleWriter(".png", _scatter),
    "text": SampleWriter(".txt", _decoded_text),
    "audio": SampleWriter(".wav", _wav),
    "environment": SampleWriter(".gif", _episodes),
}


def writer_for(kind: str) -> SampleWriter:
    """The writer of samples of data kind `kind`; a GenlabError for a kind without one."""
    if kind not in WRITERS:
        raise GenlabError(
            f"no sample writer for {kind!r} samples (genlab.writers knows {', '.join(WRITERS)})"
        )
    return WRITERS[kind]


def write_samples(samples: Tensor | list, out: str | Path, *, kind: str, model: Any = None) -> Path:
    """Write `samples` of data kind `kind` to `out` (exactly that path; see
    `writer_for(kind).suffix` for the file type) and return it. `model` is the model that drew
    them, for writers that need it (text: its tokenizer; audio: its sample rate)."""
    writer = writer_for(kind)
    path = Path(out)
    writer.write(samples.detach().cpu() if isinstance(samples, Tensor) else samples, path, model)
    return path


def scatter_plot(
    points: Tensor, path: str | Path, *, labels: Tensor | None = None, title: str = ""
) -> Path:
    """A square scatter plot of (N, 2) points (coloured by `labels` if given), saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    colours = {} if labels is None else {"c": labels.numpy(), "cmap": "tab10"}
    drawn = ax.scatter(points[:, 0].numpy(), points[:, 1].numpy(), s=4, alpha=0.7, **colours)
    if labels is not None:
        fig.colorbar(drawn, ax=ax)
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
