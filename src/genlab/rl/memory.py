"""What agents remember (contract.Memory): a replay buffer (off-policy, DQN), a rollout buffer
of fixed length with generalised advantage estimates (on-policy, PPO) and a buffer of whole
episodes with their returns to go (Monte Carlo, REINFORCE). Each turns the environment steps
the RL loop adds into the batches (genlab.data.environments.Transitions) of the updates due.

Bootstrapping distinguishes the two ways an episode ends: where it terminated the value after
it is 0; where a time limit cut it ("truncated"), the value of its final observation stands in
for the rest, V(s_final) (or max_a Q(s_final, a)), as the episode would have gone on.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from genlab.data.environments import Transitions


def _due(step: int, added: int, every: int) -> int:
    """How many multiples of `every` the step counter crossed going from step - added to step."""
    return step // every - (step - added) // every


class ReplayBuffer:
    """The last `capacity` transitions (a ring); after `learning_starts` steps, every
    `train_frequency` environment steps one uniform batch of `batch_size` (Mnih et al. 2015)."""

    def __init__(
        self,
        capacity: int,
        obs_size: int,
        num_envs: int,
        *,
        batch_size: int,
        learning_starts: int,
        train_frequency: int,
    ):
        self.capacity, self.num_envs, self.batch_size = capacity, num_envs, batch_size
        self.learning_starts, self.train_frequency = learning_starts, train_frequency
        self.obs = torch.zeros(capacity, obs_size)
        self.next_obs = torch.zeros(capacity, obs_size)
        self.actions = torch.zeros(capacity, dtype=torch.long)
        self.rewards = torch.zeros(capacity)
        self.terminated = torch.zeros(capacity)
        self.position = self.size = 0

    def add(self, obs, actions, rewards, next_obs, terminated, done, extras) -> None:
        for i in range(len(actions)):
            j = self.position
            self.obs[j], self.next_obs[j] = obs[i], next_obs[i]
            self.actions[j], self.rewards[j] = actions[i], rewards[i]
            self.terminated[j] = terminated[i]
            self.position = (j + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def sample(self, n: int, generator: torch.Generator | None) -> Transitions:
        i = torch.randint(self.size, (n,), generator=generator)
        return Transitions(
            self.obs[i], self.actions[i], self.rewards[i], self.next_obs[i], self.terminated[i]
        )

    def batches(self, agent: Any, step: int, next_obs: Tensor, generator: Any):
        if step < self.learning_starts:
            return
        for _ in range(_due(step, self.num_envs, self.train_frequency)):
            yield self.sample(self.batch_size, generator)

    def state_dict(self) -> dict[str, Any]:
        names = ("obs", "next_obs", "actions", "rewards", "terminated", "position", "size")
        return {name: getattr(self, name) for name in names}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("obs", "next_obs", "actions", "rewards", "terminated"):
            getattr(self, name).copy_(state[name])
        self.position, self.size = int(state["position"]), int(state["size"])


def gae(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    done: Tensor,
    *,
    gamma: float,
    lam: float,
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimates (Schulman et al. 2016) of a rollout, (T, N) each:

        delta_t = r_t + gamma * V(s'_t) * (1 - terminated_t) - V(s_t)
        A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1}

    with V(s'_t) the value of the step's own next observation (its final one where the episode
    ended), so a time limit bootstraps and a termination does not. Returns (advantages,
    returns = advantages + values)."""
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(len(rewards))):
        delta = rewards[t] + gamma * next_values[t] * (1 - terminated[t]) - values[t]
        running = delta + gamma * lam * (1 - done[t]) * running
        advantages[t] = running
    return advantages, advantages + values


class RolloutBuffer:
    """`num_steps` steps of every environment, then `epochs` passes over them in `minibatches`
    shuffled minibatches with GAE advantages (PPO); emptied after."""

    def __init__(
        self,
        num_steps: int,
        num_envs: int,
        *,
        gamma: float,
        lam: float,
        minibatches: int,
        epochs: int,
    ):
        self.num_steps, self.num_envs = num_steps, num_envs
        self.gamma, self.lam, self.minibatches, self.epochs = gamma, lam, minibatches, epochs
        self.steps: list[tuple[Tensor, ...]] = []

    def add(self, obs, actions, rewards, next_obs, terminated, done, extras) -> None:
        row = (obs, actions, rewards, next_obs, terminated, done)
        self.steps.append((*row, extras["log_prob"], extras["value"]))

    def batches(self, agent: Any, step: int, next_obs: Tensor, generator: Any):
        if len(self.steps) < self.num_steps:
            return
        obs, actions, rewards, finals, terminated, done, log_probs, values = (
            torch.stack(column) for column in zip(*self.steps, strict=True)
        )
        self.steps = []
        device = next(agent.parameters()).device
        with torch.no_grad():
            next_values = agent.value(finals.flatten(0, 1).to(device)).cpu().view_as(rewards)
        advantages, returns = gae(
            rewards, values, next_values, terminated, done, gamma=self.gamma, lam=self.lam
        )
        flat = Transitions(
            obs.flatten(0, 1), actions.flatten(), rewards.flatten(), finals.flatten(0, 1),
            terminated.flatten(), log_probs.flatten(), returns.flatten(), advantages.flatten(),
            values.flatten(),
        )  # fmt: skip
        size = len(flat) // self.minibatches
        for _ in range(self.epochs):
            order = torch.randperm(len(flat), generator=generator)
            for k in range(self.minibatches):
                i = order[k * size : (k + 1) * size]
                yield Transitions(**{name: v[i] for name, v in vars(flat).items()})

    def state_dict(self) -> dict[str, Any]:
        return {"steps": [list(row) for row in self.steps]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = [tuple(row) for row in state["steps"]]


class EpisodeBuffer:
    """Whole episodes: once `episodes` of them have ended, one batch of all their steps with
    the discounted returns to go G_t (Williams 1992; a truncated episode's G bootstraps from
    V(s_final)); the steps of episodes still running wait for the next batch."""

    def __init__(self, num_envs: int, *, episodes: int, gamma: float):
        self.num_envs, self.episodes, self.gamma = num_envs, episodes, gamma
        self.running: list[list[tuple[Tensor, ...]]] = [[] for _ in range(num_envs)]
        self.finished: list[list[tuple[Tensor, ...]]] = []

    def add(self, obs, actions, rewards, next_obs, terminated, done, extras) -> None:
        for i in range(self.num_envs):
            row = (obs[i], actions[i], rewards[i], next_obs[i], terminated[i])
            self.running[i].append(row)
            if done[i]:
                self.finished.append(self.running[i])
                self.running[i] = []

    def batches(self, agent: Any, step: int, next_obs: Tensor, generator: Any):
        if len(self.finished) < self.episodes:
            return
        episodes, self.finished = self.finished, []
        device = next(agent.parameters()).device
        columns: list[list[Tensor]] = [[] for _ in range(6)]
        for episode in episodes:
            obs, actions, rewards, finals, terminated = (
                torch.stack(c) for c in zip(*episode, strict=True)
            )
            with torch.no_grad():
                tail = agent.value(finals[-1:].to(device)).cpu()[0] * (1 - terminated[-1])
            returns = torch.zeros_like(rewards)
            running = tail
            for t in reversed(range(len(rewards))):
                running = rewards[t] + self.gamma * running
                returns[t] = running
            values = (obs, actions, rewards, finals, terminated, returns)
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        obs, actions, rewards, finals, terminated, returns = (torch.cat(c) for c in columns)
        yield Transitions(obs, actions, rewards, finals, terminated, returns=returns)

    def state_dict(self) -> dict[str, Any]:
        return {"running": [[list(r) for r in e] for e in self.running],
                "finished": [[list(r) for r in e] for e in self.finished]}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.running = [[tuple(r) for r in e] for e in state["running"]]
        self.finished = [[tuple(r) for r in e] for e in state["finished"]]
