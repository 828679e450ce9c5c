"""Exponential moving average of weights (Polyak averaging), kept in fp32 beside the model."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class EMA:
    """theta_ema <- d_t * theta_ema + (1 - d_t) * theta, after each optimizer step.

    d_t = min(decay, (1 + t) / (10 + t)) after t updates: a warm-up, so that early in training
    the average is not dominated by the random initial weights (with decay 0.999 and no warm-up,
    13% of the average after 2000 steps would still be the initialisation). Buffers (e.g.
    batch-norm statistics) are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        # averaged: floating-point parameters; copied: everything else (buffers, int tensors)
        params = {name for name, _ in model.named_parameters()}
        self.averaged = {
            k for k, v in model.state_dict().items() if k in params and v.is_floating_point()
        }
        self.shadow: dict[str, Tensor] = {
            k: v.detach().clone().float() for k, v in model.state_dict().items()
        }

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        for name, value in model.state_dict().items():
            if name in self.averaged:
                self.shadow[name].lerp_(value.float(), 1.0 - decay)
            else:
                self.shadow[name].copy_(value)

    def state_dict(self) -> dict[str, Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        missing = set(self.shadow) ^ set(state)
        if missing:
            raise KeyError(f"EMA state does not match the model: {sorted(missing)[:3]}")
        for k, v in state.items():
            self.shadow[k].copy_(v)

    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict(
            {k: v.to(model.state_dict()[k].dtype) for k, v in self.shadow.items()}
        )
