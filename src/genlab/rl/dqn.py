"""Deep Q-learning (Mnih et al. 2015, "Human-level control through deep reinforcement
learning"), with Double DQN as an option (van Hasselt et al. 2016).

A network Q_theta(s, .) scores every action; the agent acts epsilon-greedily (a uniformly random
action with probability epsilon, annealed linearly from `start_epsilon` to `end_epsilon` over
`exploration_steps` environment steps, else argmax_a Q) and learns from a replay buffer of its
last `buffer_size` transitions (genlab.rl.memory.ReplayBuffer): every `train_frequency`
environment steps, after `learning_starts`, one batch of `batch_size` and the TD error

    y      = r + gamma * (1 - terminated) * Q_target(s', argmax_a' Q_online(s', a'))  Double DQN
    y      = r + gamma * (1 - terminated) * max_a' Q_target(s', a')                   DQN
    loss   = mean (Q_theta(s, a) - y)^2     or, with `huber`, mean Huber(Q_theta(s, a) - y)
                                           (delta 1: the paper's error clipping)

The target network theta^- follows theta every `target_every` updates: a copy (tau = 1, the
paper's "hard" update) or Polyak averaging theta^- <- tau theta + (1 - tau) theta^-
(contract.TargetNetwork). A time limit is not a termination: s' after a truncation is still
bootstrapped (genlab.rl.memory).

Defaults are CleanRL's dqn.py for CartPole-v1 (a 120-84 ReLU network, buffer 10,000, batch 128,
gamma 0.99, epsilon 1 -> 0.05 over half of 500,000 steps, learning from step 10,000 every 10
steps, the target copied every 500 environment steps = 50 updates, Adam 2.5e-4, the squared
error). The paper's Huber loss is the option `huber`: with Adam at these settings it diverged on
CartPole (Q-learning on 10,000 random-policy transitions: mean Q 40 after 1,000 updates and
10,000 after 4,000, far past the 1 / (1 - gamma) = 100 that no return can exceed; the squared
error's mean Q was 60 after 4,000), so it is not the default.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.data.environments import Transitions
from genlab.rl.base import Agent, check_environment_config, mlp
from genlab.rl.memory import ReplayBuffer


@dataclass
class DQNConfig:
    data_shape: tuple[int, ...] = (4,)  # (D,): one observation; from the environment
    num_actions: int = 2  # from the environment
    env: str = "CartPole-v1"  # from the environment (gymnasium's name)
    hidden: tuple[int, ...] = (120, 84)
    gamma: float = 0.99
    double: bool = False  # Double DQN: the online network picks a', the target scores it
    huber: bool = False  # True: Huber loss (the paper's error clipping); False: squared error
    buffer_size: int = 10_000
    batch_size: int = 128
    learning_starts: int = 10_000  # environment steps before the first update
    train_frequency: int = 10  # environment steps per update
    target_every: int = 50  # updates between target-network updates
    tau: float = 1.0  # 1: copy (hard update); below 1: Polyak averaging
    start_epsilon: float = 1.0
    end_epsilon: float = 0.05
    exploration_steps: int = 250_000  # environment steps of the linear epsilon schedule

    def validate(self) -> None:
        check_environment_config(self)
        if not 0 <= self.gamma <= 1 or not 0 < self.tau <= 1:
            raise ValueError("gamma must be in [0, 1] and tau in (0, 1]")
        for name in ("buffer_size", "batch_size", "train_frequency", "target_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.end_epsilon <= self.start_epsilon <= 1:
            raise ValueError("epsilon must go down: 0 <= end_epsilon <= start_epsilon <= 1")
        if self.learning_starts < 0 or self.exploration_steps < 0:
            raise ValueError("learning_starts and exploration_steps must be >= 0")


class DQN(Agent):
    Config = DQNConfig
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 500_000,
        "lr": 2.5e-4,
        "grad_clip": 10.0,
        "log_every": 5_000,
        "eval_every": 25_000,
        "checkpoint_every": 25_000,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # larger batches and network; the environment steps stay the CPU's
        "gpu": {"model_config": {"hidden": (256, 256), "batch_size": 512}, "train": {}}
    }

    def __init__(self, config: DQNConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.q = mlp(config.data_shape[0], tuple(config.hidden), config.num_actions)
        self.target = copy.deepcopy(self.q).requires_grad_(False)

    def q_values(self, obs: Tensor) -> Tensor:
        return self.q(obs)

    def greedy(self, obs: Tensor) -> Tensor:
        return self.q(obs).argmax(-1)

    def epsilon(self, step: int) -> float:
        c = self.config
        if c.exploration_steps == 0:
            return c.end_epsilon
        fraction = min(1.0, step / c.exploration_steps)
        return c.start_epsilon + fraction * (c.end_epsilon - c.start_epsilon)

    @torch.no_grad()
    def act(self, obs: Tensor, *, step: int, generator=None, explore: bool = True):
        """Epsilon-greedy actions (N,): the random draws come from `generator`."""
        actions = self.greedy(obs)
        if explore:
            n = len(obs)
            random = torch.rand(n, generator=generator) < self.epsilon(step)
            other = torch.randint(self.config.num_actions, (n,), generator=generator)
            actions = torch.where(random.to(actions.device), other.to(actions.device), actions)
        return actions, {}

    def memory(self, num_envs: int) -> ReplayBuffer:
        c = self.config
        return ReplayBuffer(
            c.buffer_size, c.data_shape[0], num_envs, batch_size=c.batch_size,
            learning_starts=c.learning_starts, train_frequency=c.train_frequency,
        )  # fmt: skip

    def td_target(self, batch: Transitions) -> Tensor:
        """y = r + gamma (1 - terminated) Q_target(s', a*), a* from the target (DQN) or from the
        online network (Double DQN)."""
        with torch.no_grad():
            following = self.target(batch.next_obs)
            if self.config.double:
                best = self.q(batch.next_obs).argmax(-1, keepdim=True)
            else:
                best = following.argmax(-1, keepdim=True)
            value = following.gather(1, best)[:, 0]
            return batch.rewards + self.config.gamma * (1 - batch.terminated) * value

    def loss(self, batch: Transitions) -> dict[str, Tensor]:
        q = self.q(batch.obs).gather(1, batch.actions[:, None])[:, 0]
        y = self.td_target(batch)
        error = F.huber_loss(q, y) if self.config.huber else F.mse_loss(q, y)
        return {"loss": error, "q": q.mean().detach(), "td_error": (q - y).abs().mean().detach()}

    @torch.no_grad()
    def after_update(self, updates: int) -> None:
        """The target network follows every `target_every` updates (contract.TargetNetwork)."""
        if updates % self.config.target_every:
            return
        tau = self.config.tau
        for target, online in zip(self.target.parameters(), self.q.parameters(), strict=True):
            if tau == 1.0:
                target.copy_(online)
            else:
                target.lerp_(online, tau)
