"""A family that is not part of genlab, written the way a new family plugs in (issue 17): a
model class that keeps the contract, a sample option, a verb of its own, and names registered
in genlab.registry — nothing in shared code knows it exists.

The model is a diagonal Gaussian over 2-D points: exact log-likelihood, trained by the shared
loop on the toy2d datasets, sampled with a `spread` option that scales the standard deviation.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Annotated, Any, ClassVar

import torch
import typer
from torch import Tensor, nn

from genlab.contract import option


@dataclasses.dataclass(frozen=True)
class GaussianConfig:
    data_shape: tuple[int, ...] = (2,)
    num_classes: int = 0


class Gaussian(nn.Module):
    """x ~ N(mu, diag(sigma^2)), mu and log sigma learned by maximum likelihood."""

    Config = GaussianConfig
    data_kinds: ClassVar[tuple[str, ...]] = ("vector",)
    presets: ClassVar[dict[str, dict[str, Any]]] = {"gpu": {"train": {"batch_size": 512}}}
    train_defaults: ClassVar[dict[str, Any]] = {"lr": 0.05, "warmup_steps": 0}

    @dataclasses.dataclass(frozen=True)
    class SampleOptions:
        spread: float = option(1.0, help="scale of the standard deviation", ge=0.0)

    def __init__(self, config: GaussianConfig):
        super().__init__()
        self.config = config
        dims = math.prod(config.data_shape)
        self.mean = nn.Parameter(torch.zeros(dims))
        self.log_std = nn.Parameter(torch.zeros(dims))

    def log_prob(self, x: Tensor, *, generator: Any = None) -> Tensor:
        z = (x.flatten(1) - self.mean) / self.log_std.exp()
        return (-0.5 * z**2 - self.log_std - 0.5 * math.log(2 * math.pi)).sum(1)

    def loss(self, batch: Any) -> dict[str, Tensor]:
        x = batch[0] if isinstance(batch, tuple | list) else batch
        return {"loss": -self.log_prob(x).mean()}

    def sample(self, n: int, *, generator: Any = None, spread: float = 1.0) -> Tensor:
        eps = torch.randn(n, self.mean.numel(), generator=generator, device=self.mean.device)
        return (self.mean + spread * self.log_std.exp() * eps).view(n, *self.config.data_shape)


def describe(
    run: Annotated[Path, typer.Argument(help="run directory")],
) -> None:
    """Print the fitted mean and standard deviation of a gaussian run."""
    from genlab.api import load

    model = load(run)
    mean = ", ".join(f"{v:.3f}" for v in model.mean.tolist())
    std = ", ".join(f"{v:.3f}" for v in model.log_std.exp().tolist())
    print(f"mean [{mean}] std [{std}]")
