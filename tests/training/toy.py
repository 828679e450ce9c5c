"""A tiny model that keeps the contract, for testing the loop without any model family.

loss = mean squared error of a small MLP's reconstruction of x + noise from the global RNG (so
RNG state matters for exact resume) + a dropout layer (more global RNG).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genlab.data.base import ArrayDataset, DataSpec, batch_inputs


@dataclass
class ToyConfig:
    data_shape: tuple[int, ...] = (2,)
    hidden: int = 16
    noise: float = 0.1


class Toy(nn.Module):
    Config = ToyConfig

    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config = config
        d = config.data_shape[0]
        self.net = nn.Sequential(
            nn.Linear(d, config.hidden), nn.Tanh(), nn.Dropout(0.1), nn.Linear(config.hidden, d)
        )

    def loss(self, batch):
        x = batch_inputs(batch)
        noisy = x + self.config.noise * torch.randn_like(x)
        mse = (self.net(noisy) - x).pow(2).sum(1).mean()
        return {"loss": mse, "mse": mse.detach()}

    def sample(self, n, *, generator=None):
        z = torch.randn(n, self.config.data_shape[0], generator=generator)
        return self.net(z)


def toy_data(n: int = 64, d: int = 2, seed: int = 0) -> ArrayDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return ArrayDataset(x, None, DataSpec(kind="vector", shape=(d,), levels=0))
