"""The contract every generative model keeps (see DESIGN.md).

Shared code (training loops, metrics, serving, CLI, tuning) sees only this contract and the
registry, never a specific model:

    class Model(nn.Module):
        Config: type                     # a dataclass; Model(config) builds the model
        config: Config
        def loss(self, batch) -> dict[str, Tensor]      # "loss" required; the rest is logged
        def sample(self, n, *, generator=None, **cond) -> Tensor
        # likelihood models also:
        def log_prob(self, x, *, generator=None) -> Tensor   # nats per example; exact or a bound

Optional parts, each found by `isinstance` against the protocols below, never by model name:
- Config fields `data_shape: tuple[int, ...]` and `num_classes: int` (and for text data
  `vocab_size` and `block_size`, the window length) are filled from the dataset's DataSpec by
  :func:`config_for_data` unless the user overrides them.
- `prepare(x, *, generator=None)`: map data in [0, 1] to the model's data space (e.g. a
  Bernoulli draw for binarized data). Evaluation calls it with a seeded generator so every
  evaluation sees the same binarized test set; `loss` calls it itself with the global RNG.
- `visualize(data, out_dir, *, generator)`: write the model's figures, return their paths.
- `train_defaults`: a dict of TrainConfig values this model trains well with on a CPU.
- `bound_name`: what `log_prob` returns ("exact" or e.g. "IWAE bound, k=256").
- `trainer`: the module of the loop that trains this model ("genlab.training.loop" when absent);
  a loop module exports `TrainConfig` and `train(model, train_data, val_data, cfg, run, ...)`.
- `data_kinds`: the `DataSpec.kind`s the model trains on (`"image"`, `"vector"`, `"text"`), a
  class attribute read by :func:`data_kinds`. `genlab train` refuses other data with one line
  before it makes the run folder (absent: any kind; a loss on two examples still checks the fit).
- `sample_latent(n, *, generator)` + `decode_latent(z, **cond)` (`LatentSampler`): all the
  randomness of `sample` drawn first, then a deterministic, row-by-row decoding, so that
  `sample(n, generator=g, **cond) == decode_latent(sample_latent(n, generator=g), **cond)` and
  decoding a concatenation of latents equals concatenating their decodings. The server batches
  the requests of such a model into one forward pass with each request's own seed.
- Adversarial models (GANs, see `AdversarialModel`) hold `generator` and `discriminator` and add
  `discriminator_loss` / `generator_loss`; their `loss` is for evaluation only.
Image models return samples as float (B, C, H, W) in [0, 1].
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from torch import Tensor

from genlab.data.base import Dataset, DataSpec


@runtime_checkable
class GenerativeModel(Protocol):
    Config: ClassVar[type]
    config: Any

    def loss(self, batch: Any) -> dict[str, Tensor]: ...

    def sample(self, n: int, *, generator: Any = None, **cond: Any) -> Tensor: ...


@runtime_checkable
class LikelihoodModel(GenerativeModel, Protocol):
    def log_prob(self, x: Tensor, *, generator: Any = None) -> Tensor: ...


@runtime_checkable
class AdversarialModel(GenerativeModel, Protocol):
    generator: Any
    discriminator: Any

    def discriminator_loss(self, batch: Any, tricks: Any, step: int) -> dict[str, Tensor]: ...

    def generator_loss(self, batch: Any, tricks: Any, step: int) -> dict[str, Tensor]: ...


DEFAULT_TRAINER = "genlab.training.loop"


def trainer_module(cls: type):
    """The loop module that trains models of class `cls` (its `trainer`, else the default)."""
    import importlib

    return importlib.import_module(getattr(cls, "trainer", DEFAULT_TRAINER))


def data_kinds(cls: type) -> tuple[str, ...] | None:
    """The data kinds (`DataSpec.kind`) models of class `cls` train on; None: it does not say."""
    kinds = getattr(cls, "data_kinds", None)
    return None if kinds is None else tuple(kinds)


@runtime_checkable
class LatentSampler(Protocol):
    """sample = decode_latent(sample_latent(...)), decoded row by row (see the module docstring)."""

    def sample_latent(self, n: int, *, generator: Any = None) -> Tensor: ...

    def decode_latent(self, z: Tensor, **cond: Any) -> Tensor: ...


@runtime_checkable
class Preparable(Protocol):
    def prepare(self, x: Tensor, *, generator: Any = None) -> Tensor: ...


@runtime_checkable
class Visualizable(Protocol):
    def visualize(self, data: Dataset, out_dir: Path, *, generator: Any) -> list[Path]: ...


C = TypeVar("C")


def config_for_data(config: C, spec: DataSpec) -> C:
    """Fill the data-dependent fields (`data_shape`, `num_classes`, text's `vocab_size` and
    `block_size`) a Config declares."""
    names = {f.name for f in dataclasses.fields(config)}
    changes: dict[str, Any] = {}
    if "data_shape" in names:
        changes["data_shape"] = tuple(spec.shape)
    if "num_classes" in names:
        changes["num_classes"] = spec.num_classes
    if spec.kind == "text":  # language models: the tokenizer's vocabulary and the data's window
        if "vocab_size" in names:
            changes["vocab_size"] = spec.vocab_size
        if "block_size" in names:
            changes["block_size"] = spec.shape[0]
    return dataclasses.replace(config, **changes)
