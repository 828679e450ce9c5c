"""Environments as data: `gym:NAME` (any gymnasium environment with a discrete action space and
a flat observation vector, e.g. gym:CartPole-v1, gym:Acrobot-v1, gym:MountainCar-v0).

An RL model learns from what it does, so its "data" is the environment: `EnvironmentData`
holds its name, its DataSpec (kind "environment": the observation shape as `shape`, the number
of actions and the environment's name in `extra`, which fill an agent's config) and makes
instances of it. Shared code uses three more pieces from here:

- `play(act, env, n, seeds)`: n episodes in lockstep, the policy `act(obs (N, D)) -> actions
  (N,)` called once per step on the observations of the episodes still running (evaluation,
  an agent's `sample`, the metrics);
- `env_state` / `set_env_state`: an instance's state as plain data (numbers, arrays and the
  random generator's state of the environment and of each wrapper), which an RL checkpoint keeps
  so that a resumed run continues every episode where it stopped (exact for environments whose
  state is plain data, as gymnasium's classic-control ones);
- `batch(indices)`: transitions of a uniformly random policy (seeded by the indices), the
  "examples" of the environment, on which `genlab train` checks that a model can read it.

gymnasium is imported when an environment is made, with an install hint when it is missing.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlab.data.base import DataSpec
from genlab.errors import GenlabError

KIND = "environment"
EXAMPLES = 256  # random transitions an EnvironmentData holds as "examples" (see batch)


def gymnasium():
    try:
        import gymnasium
    except ImportError:
        raise GenlabError(
            "RL environments need gymnasium: pip install 'gymnasium[classic-control]'"
        ) from None
    return gymnasium


def _empty() -> Tensor:
    return torch.zeros(0)


@dataclass
class Transitions:
    """A batch of experience, (B, ...) each: what an agent's loss reads (the random-policy
    batch of EnvironmentData fills every field but `values`)."""

    obs: Tensor  # (B, D) float32
    actions: Tensor  # (B,) int64
    rewards: Tensor  # (B,) float32
    next_obs: Tensor  # (B, D)
    terminated: Tensor  # (B,) float32: 1 where next_obs ends the episode (no bootstrap)
    # what some algorithms keep besides (empty where a memory does not fill them):
    log_probs: Tensor = field(default_factory=_empty)  # (B,) log pi_old(a | s), behaviour policy
    returns: Tensor = field(default_factory=_empty)  # (B,) the return to go (or the GAE target)
    advantages: Tensor = field(default_factory=_empty)  # (B,)
    values: Tensor = field(default_factory=_empty)  # (B,) V_old(s)

    def __len__(self) -> int:
        return len(self.actions)


@dataclass
class Episode:
    """One episode played by a policy: its environment, reset seed, observations (T + 1, D),
    actions (T,) and rewards (T,)."""

    env: str
    seed: int
    observations: Tensor
    actions: Tensor
    rewards: Tensor

    @property
    def total(self) -> float:
        return float(self.rewards.sum())

    def __len__(self) -> int:
        return len(self.actions)


class EnvironmentData:
    """A gymnasium environment as a genlab dataset (see the module docstring)."""

    def __init__(self, name: str, *, seed: int = 0):
        self.name = name
        env = self.make()
        try:
            space, actions = env.observation_space, env.action_space
            gym = gymnasium()
            if not isinstance(actions, gym.spaces.Discrete):
                raise GenlabError(
                    f"gym:{name} has {type(actions).__name__} actions; genlab's agents choose "
                    "among discrete actions (e.g. gym:CartPole-v1, gym:Acrobot-v1)"
                )
            if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
                raise GenlabError(
                    f"gym:{name} observes {space}; genlab's agents read flat observation "
                    "vectors (a Box of one dimension)"
                )
            limit = env.spec.max_episode_steps if env.spec is not None else None
        finally:
            env.close()
        self.spec = DataSpec(
            KIND,
            tuple(space.shape),
            extra={"num_actions": int(actions.n), "env": name, "max_episode_steps": limit},
        )
        self._examples = random_transitions(self, EXAMPLES, seed=seed)

    def make(self, render_mode: str | None = None) -> Any:
        """A new instance of the environment."""
        return make(self.name, render_mode)

    def __len__(self) -> int:
        return EXAMPLES

    def batch(self, indices: Tensor) -> Transitions:
        """Random-policy transitions (see `random_transitions`) at `indices`."""
        i = torch.as_tensor(indices, dtype=torch.long)
        return Transitions(**{k: v[i] for k, v in vars(self._examples).items() if v.numel()})


def make(name: str, render_mode: str | None = None) -> Any:
    """A new instance of gymnasium's environment `name`; a GenlabError when it cannot be made."""
    gym = gymnasium()
    if render_mode is not None:  # pygame draws off screen: no display, no sound device
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    try:
        return gym.make(name) if render_mode is None else gym.make(name, render_mode=render_mode)
    except gym.error.Error as e:
        raise GenlabError(f"cannot make gym:{name}: {e}") from None
    except ImportError as e:  # an environment family's extra (box2d, mujoco, ...)
        raise GenlabError(f"cannot make gym:{name}: {e}") from None


def load_environment(name: str, split: str = "train") -> EnvironmentData:
    """`gym:NAME`: every split is the environment itself (train, val and test differ only in the
    episodes' seeds, which the loop and the metrics choose)."""
    return EnvironmentData(name)


def random_transitions(data: EnvironmentData, n: int, *, seed: int, gamma: float = 0.99):
    """n transitions of a uniformly random policy from seeded episodes, with log pi = -log A,
    returns to go within each episode (cut at n) and advantages = returns."""
    env = data.make()
    actions_n = data.spec.extra["num_actions"]
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    rows: list[tuple] = []
    episode_start = 0
    returns = np.zeros(n, dtype=np.float32)
    while len(rows) < n:
        action = int(rng.integers(actions_n))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        rows.append((obs, action, reward, next_obs, terminated))
        obs = next_obs
        if terminated or truncated or len(rows) == n:
            running = 0.0
            for j in range(len(rows) - 1, episode_start - 1, -1):
                running = rows[j][2] + gamma * running
                returns[j] = running
            episode_start = len(rows)
            if terminated or truncated:
                obs, _ = env.reset(seed=int(rng.integers(2**31)))
    env.close()
    columns = list(zip(*rows, strict=True))
    ret = torch.from_numpy(returns)
    return Transitions(
        obs=torch.tensor(np.stack(columns[0]), dtype=torch.float32),
        actions=torch.tensor(columns[1], dtype=torch.long),
        rewards=torch.tensor(columns[2], dtype=torch.float32),
        next_obs=torch.tensor(np.stack(columns[3]), dtype=torch.float32),
        terminated=torch.tensor(columns[4], dtype=torch.float32),
        log_probs=torch.full((n,), -float(np.log(actions_n))),
        returns=ret,
        advantages=ret.clone(),
    )


def play(
    act: Callable[[Tensor], Tensor],
    data: EnvironmentData,
    seeds: Sequence[int],
    *,
    max_steps: int | None = None,
) -> list[Episode]:
    """One episode per reset seed, all in lockstep: `act(obs (N, D) float32) -> actions (N,)`
    is called once per step with the episodes still running. Each ends when the environment
    terminates or truncates it (or after `max_steps`)."""
    envs = [data.make() for _ in seeds]
    try:
        current = [env.reset(seed=int(s))[0] for env, s in zip(envs, seeds, strict=True)]
        observations = [[o] for o in current]
        actions: list[list[int]] = [[] for _ in seeds]
        rewards: list[list[float]] = [[] for _ in seeds]
        running = list(range(len(seeds)))
        steps = 0
        while running and (max_steps is None or steps < max_steps):
            obs = torch.tensor(np.stack([current[i] for i in running]), dtype=torch.float32)
            chosen = act(obs).tolist()
            still = []
            for i, action in zip(running, chosen, strict=True):
                o, r, terminated, truncated, _ = envs[i].step(int(action))
                current[i] = o
                observations[i].append(o)
                actions[i].append(int(action))
                rewards[i].append(float(r))
                if not (terminated or truncated):
                    still.append(i)
            running, steps = still, steps + 1
    finally:
        for env in envs:
            env.close()
    return [
        Episode(
            data.name,
            int(seed),
            torch.tensor(np.stack(observations[i]), dtype=torch.float32),
            torch.tensor(actions[i], dtype=torch.long),
            torch.tensor(rewards[i], dtype=torch.float32),
        )
        for i, seed in enumerate(seeds)
    ]


def episode_frames(episode: Episode) -> list[np.ndarray]:
    """The RGB frames (H, W, 3) of an episode, replayed from its seed and actions in an
    instance that renders (render_mode="rgb_array"; the dynamics are deterministic)."""
    env = make(episode.env, render_mode="rgb_array")
    try:
        env.reset(seed=episode.seed)
        frames = [env.render()]
        for action in episode.actions.tolist():
            env.step(int(action))
            frames.append(env.render())
    finally:
        env.close()
    return frames


def episodes_gif(episodes: Sequence[Episode], path: str | Path, *, scale: float = 0.4,
                 every: int = 2, columns: int = 4) -> Path:  # fmt: skip
    """An animated GIF of episodes side by side (`columns` per row), each frame scaled by
    `scale`, every `every`-th step shown; an episode that ended early shows its last frame."""
    from PIL import Image

    clips = []
    for episode in episodes:
        frames = episode_frames(episode)[::every]
        size = (round(frames[0].shape[1] * scale), round(frames[0].shape[0] * scale))
        clips.append([Image.fromarray(f).resize(size, Image.BILINEAR) for f in frames])
    width, height = clips[0][0].size
    rows = -(-len(clips) // columns)
    shown = min(len(clips), columns)
    sheets = []
    for t in range(max(len(c) for c in clips)):
        sheet = Image.new("RGB", (shown * width, rows * height), "white")
        for k, clip in enumerate(clips):
            sheet.paste(
                clip[min(t, len(clip) - 1)], ((k % columns) * width, (k // columns) * height)
            )
        sheets.append(sheet.convert("P", palette=Image.ADAPTIVE, colors=64))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheets[0].save(path, save_all=True, append_images=sheets[1:], duration=20 * every, loop=0)
    return path


# --- an instance's state as plain data (exact resume) -----------------------------------------
_PLAIN = (bool, int, float, str, type(None), np.integer, np.floating, np.bool_)


def _plain(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf"
    if isinstance(value, tuple | list):
        return all(_plain(v) for v in value)
    return False


def _layers(env: Any) -> list[Any]:
    """The wrappers from the outside in, then the environment itself."""
    gym = gymnasium()
    layers = [env]
    while isinstance(layers[-1], gym.Wrapper):
        layers.append(layers[-1].env)
    return layers


def env_state(env: Any) -> list[dict[str, Any]]:
    """Per layer (wrappers, then the environment): its plain attributes (numbers, arrays as
    tensors) and its random generator's state. Everything else (spaces, render surfaces) is
    configuration that a new instance has anyway."""
    state = []
    for layer in _layers(env):
        values = {}
        for key, value in vars(layer).items():
            if key.startswith("__") or not _plain(value):
                continue
            values[key] = torch.from_numpy(value.copy()) if isinstance(value, np.ndarray) else value
            if isinstance(value, np.generic):
                values[key] = value.item()
        generator = vars(layer).get("_np_random")
        if generator is not None:
            values["_np_random"] = copy.deepcopy(generator.bit_generator.state)
        state.append(values)
    return state


def set_env_state(env: Any, state: list[dict[str, Any]]) -> None:
    """Put back what env_state saved, in an instance made the same way."""
    layers = _layers(env)
    if len(layers) != len(state):
        raise GenlabError("the saved environment state does not fit this environment")
    for layer, values in zip(layers, state, strict=True):
        for key, value in values.items():
            if key == "_np_random":
                generator = np.random.Generator(getattr(np.random, value["bit_generator"])())
                generator.bit_generator.state = value
                layer._np_random = generator
            elif isinstance(value, Tensor):
                setattr(layer, key, value.numpy().copy())
            else:
                setattr(layer, key, value)
