"""What every feature extractor offers, and streaming feature extraction.

A feature extractor maps images (float (B, C, H, W) in [0, 1], what image models' `sample`
returns) to feature vectors in two steps, so that images of different sizes can be prepared one
by one and then batched:

    x = extractor.preprocess(images)      # the protocol: quantize, channels, resize
    out = extractor(x)                    # {"features": (B, D), "logits": (B, K)} as float32

`describe()` says which network, which weights (sha256) and which protocol produced the numbers;
it goes into every result.

Extraction never holds all images: `extract` takes an iterable of batches (a generator drawing
samples batch by batch, a folder read batch by batch) and keeps only the outputs it is asked for,
under `torch.inference_mode`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class FeatureExtractor(Protocol):
    name: str
    dim: int  # size of "features"

    def preprocess(self, images: Tensor) -> Tensor: ...

    def __call__(self, x: Tensor) -> dict[str, Tensor]: ...

    def describe(self) -> dict[str, Any]: ...


def extract(
    extractor: FeatureExtractor,
    batches: Iterable[Tensor],
    *,
    outputs: tuple[str, ...] = ("features",),
    device: torch.device | str = "cpu",
    on_batch: Callable[[dict[str, Tensor]], None] | None = None,
) -> dict[str, Tensor]:
    """Run `extractor` over every batch; the requested outputs concatenated, float32 on CPU.

    With `on_batch`, each batch's outputs are handed to it (e.g. a running mean/covariance) and
    nothing is kept, so memory stays bounded however many images pass through.
    """
    kept: dict[str, list[Tensor]] = {name: [] for name in outputs}
    with torch.inference_mode():
        for images in batches:
            out = extractor(extractor.preprocess(images.to(device)))
            out = {name: out[name].float().cpu() for name in outputs}
            if on_batch is not None:
                on_batch(out)
            else:
                for name in outputs:
                    kept[name].append(out[name])
    if on_batch is not None:
        return {}
    return {name: torch.cat(parts) if parts else torch.empty(0, 0) for name, parts in kept.items()}


def rechunk(batches: Iterable[Tensor], size: int) -> Iterator[Tensor]:
    """The images of `batches`, in order, re-cut into batches of exactly `size` (a shorter one
    at the end, and wherever the image size changes).

    Why: float32 features are bit-identical only for identical batch shapes, since a different
    shape may change the order in which the convolution and matrix kernels sum (the last bits
    of every feature). Re-cut to a fixed size, the extractor sees the same shapes whatever
    batches the samples were drawn in, so the metrics do not depend on the sampling batch size.
    """
    pending: list[Tensor] = []
    count = 0
    for batch in batches:
        while len(batch):
            if pending and pending[0].shape[1:] != batch.shape[1:]:
                yield torch.cat(pending)
                pending, count = [], 0
            take = min(size - count, len(batch))
            pending.append(batch[:take])
            batch, count = batch[take:], count + take
            if count == size:
                yield torch.cat(pending)
                pending, count = [], 0
    if pending:
        yield torch.cat(pending)


def tensor_batches(images: Tensor, batch_size: int) -> Iterator[Tensor]:
    """Slices of an in-memory (N, C, H, W) tensor."""
    for start in range(0, len(images), batch_size):
        yield images[start : start + batch_size]


def sample_batches(
    sample: Callable[..., Tensor], n: int, batch_size: int, *, seed: int, device: Any = "cpu"
) -> Iterator[Tensor]:
    """n samples drawn `batch_size` at a time from one seeded generator.

    The same (n, seed) gives the same images whatever the batch size only if the model draws its
    noise in one piece per sample; metrics therefore record the batch size they used (and
    extract features in batches of their own size, see `rechunk`).
    """
    generator = torch.Generator(device=device).manual_seed(seed)
    for start in range(0, n, batch_size):
        count = min(batch_size, n - start)
        with torch.no_grad():
            images = sample(count, generator=generator)
        if images.dim() != 4:
            from genlab.errors import GenlabError

            raise GenlabError(
                f"sample metrics need images (B, C, H, W); this model samples {tuple(images.shape)}"
            )
        yield images.float()


def dataset_batches(data: Any, batch_size: int, n: int | None = None) -> Iterator[Tensor]:
    """The first n (default all) examples of a genlab Dataset, in order, as image batches."""
    from genlab.data.base import batch_inputs

    total = len(data) if n is None else min(n, len(data))
    for start in range(0, total, batch_size):
        indices = torch.arange(start, min(start + batch_size, total))
        yield batch_inputs(data.batch(indices)).float()
