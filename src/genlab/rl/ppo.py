"""Proximal policy optimisation with the clipped objective (Schulman et al. 2017, "Proximal
Policy Optimization Algorithms").

An actor pi_theta(a | s) and a critic V_theta(s) (two networks) collect `num_steps` steps in
each of the loop's environments with the current policy (genlab.rl.memory.RolloutBuffer), which
then gives generalised advantage estimates A_t (gamma, `gae_lambda`) and returns R_t = A_t +
V_old(s_t), and `update_epochs` passes over the rollout in `minibatches` minibatches, each an
optimizer step on

    r_t(theta) = pi_theta(a_t | s_t) / pi_old(a_t | s_t)
    L_clip     = -mean min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)      (A_t normalised per
                                                                          minibatch)
    L_value    = 0.5 mean max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2)
    loss       = L_clip + value_coef * L_value - entropy_coef * mean H(pi(. | s_t))

(the clipped value loss as in the reference implementations; `clip_value=False` for the plain
squared error). Logged besides: the approximate KL mean((r - 1) - log r) and the fraction of
clipped ratios.

Defaults are CleanRL's ppo.py for CartPole-v1: 4 environments x 128 steps, 4 minibatches, 4
epochs, gamma 0.99, lambda 0.95, eps 0.2, entropy 0.01, value 0.5, Adam 2.5e-4 annealed to 0,
gradient norm 0.5, 64-64 tanh networks, 500,000 steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genlab.data.environments import Transitions
from genlab.rl.base import Agent, check_environment_config, mlp
from genlab.rl.memory import RolloutBuffer
from genlab.rl.reinforce import sample_actions


@dataclass
class PPOConfig:
    data_shape: tuple[int, ...] = (4,)  # from the environment
    num_actions: int = 2
    env: str = "CartPole-v1"
    hidden: tuple[int, ...] = (64, 64)
    gamma: float = 0.99
    gae_lambda: float = 0.95
    num_steps: int = 128  # steps per environment per rollout
    minibatches: int = 4
    update_epochs: int = 4
    clip: float = 0.2  # eps of the clipped ratio
    clip_value: bool = True
    normalize_advantages: bool = True
    value_coef: float = 0.5
    entropy_coef: float = 0.01

    def validate(self) -> None:
        check_environment_config(self)
        if not 0 <= self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ValueError("gamma and gae_lambda must be in [0, 1]")
        for name in ("num_steps", "minibatches", "update_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.clip <= 0 or self.value_coef < 0 or self.entropy_coef < 0:
            raise ValueError("clip must be > 0; value_coef and entropy_coef >= 0")


def clipped_objective(ratio: Tensor, advantages: Tensor, clip: float) -> Tensor:
    """L_clip = -mean min(r A, clip(r, 1 - eps, 1 + eps) A)."""
    unclipped = ratio * advantages
    clipped = ratio.clamp(1 - clip, 1 + clip) * advantages
    return -torch.min(unclipped, clipped).mean()


class PPO(Agent):
    Config = PPOConfig
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 500_000,
        "num_envs": 4,
        "lr": 2.5e-4,
        "anneal_lr": True,
        "grad_clip": 0.5,
        "log_every": 5_000,
        "eval_every": 25_000,
        "checkpoint_every": 25_000,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {"model_config": {"hidden": (256, 256)}, "train": {"num_envs": 16}}
    }

    def __init__(self, config: PPOConfig):
        super().__init__()
        config.validate()
        self.config = config
        size = config.data_shape[0]
        self.actor = mlp(size, tuple(config.hidden), config.num_actions, nn.Tanh)
        self.critic = mlp(size, tuple(config.hidden), 1, nn.Tanh)

    def greedy(self, obs: Tensor) -> Tensor:
        return self.actor(obs).argmax(-1)

    def value(self, obs: Tensor) -> Tensor:
        return self.critic(obs)[:, 0]

    @torch.no_grad()
    def act(self, obs: Tensor, *, step: int, generator=None, explore: bool = True):
        """Actions drawn from pi (or its argmax), with log pi(a | s) and V(s) for the rollout."""
        logits = self.actor(obs)
        actions = sample_actions(logits, generator) if explore else logits.argmax(-1)
        log_prob = torch.distributions.Categorical(logits=logits).log_prob(actions)
        return actions, {"log_prob": log_prob, "value": self.value(obs)}

    def memory(self, num_envs: int) -> RolloutBuffer:
        c = self.config
        return RolloutBuffer(
            c.num_steps, num_envs, gamma=c.gamma, lam=c.gae_lambda, minibatches=c.minibatches,
            epochs=c.update_epochs,
        )  # fmt: skip

    def loss(self, batch: Transitions) -> dict[str, Tensor]:
        c = self.config
        distribution = torch.distributions.Categorical(logits=self.actor(batch.obs))
        log_ratio = distribution.log_prob(batch.actions) - batch.log_probs
        ratio = log_ratio.exp()
        advantages = batch.advantages
        if c.normalize_advantages and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss = clipped_objective(ratio, advantages, c.clip)
        values = self.value(batch.obs)
        value_loss = (values - batch.returns).pow(2)
        if c.clip_value and batch.values.numel():
            kept = batch.values + (values - batch.values).clamp(-c.clip, c.clip)
            value_loss = torch.max(value_loss, (kept - batch.returns).pow(2))
        value_loss = 0.5 * value_loss.mean()
        entropy = distribution.entropy().mean()
        loss = policy_loss + c.value_coef * value_loss - c.entropy_coef * entropy
        with torch.no_grad():
            approx_kl = ((ratio - 1) - log_ratio).mean()
            clipped = ((ratio - 1).abs() > c.clip).float().mean()
        return {
            "loss": loss,
            "policy_loss": policy_loss.detach(),
            "value_loss": value_loss.detach(),
            "entropy": entropy.detach(),
            "approx_kl": approx_kl,
            "clip_fraction": clipped,
        }
