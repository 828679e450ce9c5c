"""What every genlab agent shares (the family base class of genlab.rl): it trains on an
environment (data kind "environment", `gym:NAME`) in the RL loop (genlab.training.rl), its
config knows the environment's observation size, actions and name (filled from the data), and
its `sample` plays greedy episodes, which `genlab sample RUN --out x.gif` shows as a GIF.

A subclass gives `policy_logits(obs)` or `q_values(obs)` through `greedy(obs)`, `act`, `memory`
and `loss` (contract.Agent).
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genlab.data.environments import KIND


def mlp(inputs: int, hidden: tuple[int, ...], outputs: int, activation: type = nn.ReLU):
    """Linear layers of `hidden` units with `activation` between them."""
    sizes = (inputs, *hidden)
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), activation()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], outputs))


def check_environment_config(config: Any) -> None:
    """The fields the environment fills, checked (a ValueError naming the data to use)."""
    if config.num_actions < 1 or len(config.data_shape) != 1 or not config.env:
        raise ValueError(
            "an agent acts in an environment with discrete actions: train it on --data "
            "gym:NAME (e.g. gym:CartPole-v1)"
        )


class Agent(nn.Module):
    """The family base class: data kind, trainer, sampling as greedy episodes."""

    data_kinds: ClassVar[tuple[str, ...]] = (KIND,)
    sample_kind: ClassVar[str] = KIND
    trainer: ClassVar[str] = "genlab.training.rl"
    config: Any

    def greedy(self, obs: Tensor) -> Tensor:
        """The action the agent thinks best in each observation (N,)."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> list:
        """n greedy episodes in the agent's environment (genlab.data.environments.Episode),
        their reset seeds drawn from `generator`."""
        from genlab.data.environments import EnvironmentData, play

        where = "cpu" if generator is None else generator.device
        seeds = torch.randint(2**31 - 1, (n,), generator=generator, device=where).tolist()
        device = next(self.parameters()).device

        def act(obs: Tensor) -> Tensor:
            return self.greedy(obs.to(device)).cpu()

        return play(act, EnvironmentData(self.config.env), seeds)
