"""REINFORCE with a learned baseline (Williams 1992, "Simple statistical gradient-following
algorithms for connectionist reinforcement learning").

A policy pi_theta(a | s) (softmax of a network's logits) plays whole episodes; once `episodes`
of them have ended (genlab.rl.memory.EpisodeBuffer), every step t of them has its discounted
return to go G_t = sum_k gamma^k r_{t+k}, and

    grad J(theta) = E[ sum_t (G_t - b(s_t)) grad log pi_theta(a_t | s_t) ]

is unbiased for any baseline b that does not depend on a_t; a learned value b = V_phi(s) (a
second network, regressed on G_t) lowers its variance. The loss of one batch:

    loss = -mean_t[ A_t log pi(a_t | s_t) ] + value_coef * mean_t[ (V_phi(s_t) - G_t)^2 ]
                 - entropy_coef * mean_t[ H(pi(. | s_t)) ],       A_t = G_t - V_phi(s_t)

with A_t held constant (no gradient) in the first term. Deviations, both common practice and
switchable: A_t is normalised to zero mean and unit variance within the batch
(`normalize_advantages`), and a time-limit cut bootstraps G from V_phi(s_final).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genlab.data.environments import Transitions
from genlab.rl.base import Agent, check_environment_config, mlp
from genlab.rl.memory import EpisodeBuffer


@dataclass
class ReinforceConfig:
    data_shape: tuple[int, ...] = (4,)  # from the environment
    num_actions: int = 2
    env: str = "CartPole-v1"
    hidden: tuple[int, ...] = (64, 64)
    gamma: float = 0.99
    episodes: int = 8  # whole episodes per update
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    normalize_advantages: bool = True
    baseline: bool = True  # False: plain REINFORCE, A_t = G_t

    def validate(self) -> None:
        check_environment_config(self)
        if not 0 <= self.gamma <= 1 or self.episodes < 1:
            raise ValueError("gamma must be in [0, 1] and episodes >= 1")
        if self.value_coef < 0 or self.entropy_coef < 0:
            raise ValueError("value_coef and entropy_coef must be >= 0")


def sample_actions(logits: Tensor, generator: torch.Generator | None) -> Tensor:
    """One action per row of logits (N, A), drawn from softmax(logits) with `generator`."""
    probs = logits.float().softmax(-1).cpu()
    return torch.multinomial(probs, 1, generator=generator)[:, 0].to(logits.device)


class Reinforce(Agent):
    Config = ReinforceConfig
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 300_000,
        "num_envs": 4,
        "lr": 1e-3,
        "grad_clip": 1.0,
        "log_every": 5_000,
        "eval_every": 25_000,
        "checkpoint_every": 25_000,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {"model_config": {"hidden": (256, 256), "episodes": 32}, "train": {"num_envs": 16}}
    }

    def __init__(self, config: ReinforceConfig):
        super().__init__()
        config.validate()
        self.config = config
        size = config.data_shape[0]
        self.policy = mlp(size, tuple(config.hidden), config.num_actions, nn.Tanh)
        self.baseline = mlp(size, tuple(config.hidden), 1, nn.Tanh)

    def greedy(self, obs: Tensor) -> Tensor:
        return self.policy(obs).argmax(-1)

    def value(self, obs: Tensor) -> Tensor:
        """V_phi(s) (N,); 0 without a baseline."""
        v = self.baseline(obs)[:, 0]
        return v if self.config.baseline else torch.zeros_like(v)

    @torch.no_grad()
    def act(self, obs: Tensor, *, step: int, generator=None, explore: bool = True):
        logits = self.policy(obs)
        actions = sample_actions(logits, generator) if explore else logits.argmax(-1)
        return actions, {}

    def memory(self, num_envs: int) -> EpisodeBuffer:
        return EpisodeBuffer(num_envs, episodes=self.config.episodes, gamma=self.config.gamma)

    def loss(self, batch: Transitions) -> dict[str, Tensor]:
        c = self.config
        distribution = torch.distributions.Categorical(logits=self.policy(batch.obs))
        log_prob = distribution.log_prob(batch.actions)
        values = self.baseline(batch.obs)[:, 0]
        advantages = batch.returns - (values.detach() if c.baseline else 0.0)
        if c.normalize_advantages and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss = -(advantages * log_prob).mean()
        value_loss = (values - batch.returns).pow(2).mean()
        entropy = distribution.entropy().mean()
        loss = policy_loss + c.value_coef * value_loss - c.entropy_coef * entropy
        return {
            "loss": loss,
            "policy_loss": policy_loss.detach(),
            "value_loss": value_loss.detach(),
            "entropy": entropy.detach(),
        }
