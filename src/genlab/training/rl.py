"""The RL loop (a contract.Trainer): an agent acts in `num_envs` copies of an environment and
learns from what happened, one optimizer step per batch its memory gives.

    obs <- reset every environment (seeds seed, seed + 1, ...)
    while step < steps:                                  # steps count environment steps
        actions, extras = agent.act(obs, step, explore)  # (N,) and e.g. log pi, V for memory
        step every environment; an episode that ends is logged and its environment reset
        memory.add(obs, actions, rewards, next_obs, terminated, done, extras)
        for batch in memory.batches(agent, step, obs, generator):   # the updates due now:
            Adam step on agent.loss(batch) (lr linearly to 0 with anneal_lr; grad clip);
            agent.after_update(updates) for a contract.TargetNetwork (DQN's target net)
        every log_every steps: the mean return of the episodes that ended, the losses
        every eval_every steps: `eval_episodes` greedy episodes on fixed seeds (val_return);
            a new best mean return is saved at once as checkpoints/best
        every checkpoint_every steps, at every evaluation that on_eval sees, and at the end:
            a checkpoint
        a loss that is not finite stops the run (exit 3), the last checkpoint kept
        then on_eval(step, metrics) with the evaluation's numbers (the tuner prunes through it)

What it reads of a model is the Agent protocol (act, memory, loss) and TargetNetwork; what it
reads of the data is genlab.data.environments (make, play, env_state). Resume is exact: the
weights, the optimizer, the memory, the action generator, the global RNGs, every environment's
state (genlab.data.environments.env_state: exact for environments whose state is plain data)
and the episodes in flight are in the checkpoint, so a resumed run takes the same actions and
makes the same updates as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from genlab.contract import TargetNetwork
from genlab.data.environments import EnvironmentData, env_state, play, set_env_state
from genlab.training.checkpoint import RunDir
from genlab.training.logging import MetricsLog, Progress
from genlab.training.loop import (
    raise_diverged,
    restore_latest,
    restoring,
    rng_state,
    seed_everything,
    select_device,
    set_rng_state,
)

EVAL_SEED = 10**6  # greedy evaluation episodes use seeds EVAL_SEED, EVAL_SEED + 1, ...


@dataclass
class TrainConfig:
    steps: int = 100_000  # environment steps, all environments together
    num_envs: int = 1  # copies of the environment stepped together
    lr: float = 2.5e-4
    anneal_lr: bool = False  # lr linearly to 0 over the run (PPO)
    adam_eps: float = 1e-5
    grad_clip: float = 10.0  # max global gradient norm; 0 = off (the norm is still logged)
    precision: Literal["fp32"] = "fp32"
    device: str = "cpu"  # small networks: the CPU is fastest; "auto" picks cuda when there
    seed: int = 0
    log_every: int = 1000  # environment steps
    eval_every: int = 10_000
    eval_episodes: int = 20  # greedy episodes per evaluation
    checkpoint_every: int = 10_000
    keep_last: int = 3

    def validate(self) -> None:
        for name in ("steps", "num_envs", "log_every", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.lr < math.inf or self.adam_eps <= 0 or self.grad_clip < 0:
            raise ValueError("lr and adam_eps must be positive numbers and grad_clip >= 0")
        if self.eval_episodes < 1:
            raise ValueError(f"eval_episodes must be >= 1, got {self.eval_episodes}")


def load_data(data_name: str, options: dict[str, Any], cfg: TrainConfig):
    """(the environment, the same environment for evaluation): a `gym:NAME` dataset."""
    from genlab.data import load_dataset

    data = load_dataset(data_name, "train", **options)
    return data, data


def evaluate_returns(model: nn.Module, data: EnvironmentData, episodes: int) -> list[float]:
    """The returns of `episodes` greedy episodes on the seeds EVAL_SEED, EVAL_SEED + 1, ..."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device

    def greedy(obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.act(obs.to(device), step=0, explore=False)[0].cpu()

    try:
        return [e.total for e in play(greedy, data, range(EVAL_SEED, EVAL_SEED + episodes))]
    finally:
        model.train(was_training)


def train(
    model: nn.Module,
    train_data: EnvironmentData,
    val_data: EnvironmentData | None,
    cfg: TrainConfig,
    run: RunDir,
    *,
    resume: bool = False,
    progress: bool = True,
    on_eval: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """Train the agent `model` in place, writing checkpoints and metrics into `run`."""
    loop = _Loop(model, train_data, cfg, run)
    if resume:
        loop.restore()
    else:
        seed_everything(cfg.seed)
    loop.start(resume=resume, progress=progress)
    try:
        while loop.step < cfg.steps:
            loop.iteration(on_eval)
    finally:
        loop.close()
    return loop.summary or loop.log.latest()  # a resume with nothing left: the last logged


class _Loop:
    """One RL run's state: the agent, its optimizer and memory, the environments and the
    episodes in flight, the counters a checkpoint keeps."""

    def __init__(self, model: nn.Module, data: EnvironmentData, cfg: TrainConfig, run: RunDir):
        self.model, self.data, self.cfg, self.run = model, data, cfg, run
        self.device = select_device(cfg.device)
        model.to(self.device).train()
        trained = [p for p in model.parameters() if p.requires_grad]  # not a target network
        self.optimizer = torch.optim.Adam(trained, lr=cfg.lr, eps=cfg.adam_eps)
        self.memory = model.memory(cfg.num_envs)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.envs = [data.make() for _ in range(cfg.num_envs)]
        self.obs = np.stack([e.reset(seed=cfg.seed + i)[0] for i, e in enumerate(self.envs)])
        self.returns = np.zeros(cfg.num_envs)  # of the episodes in flight
        self.lengths = np.zeros(cfg.num_envs, dtype=np.int64)
        self.step = self.updates = self.episodes = 0
        self.best = -math.inf
        self.ended: list[tuple[float, int]] = []  # (return, length) since the last log
        self.losses: dict[str, list[float]] = {}
        self.summary: dict[str, float] = {}

    # --- checkpoints ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "updates": self.updates,
            "episodes": self.episodes,
            "best": self.best,
            "optimizer": self.optimizer.state_dict(),
            "memory": self.memory.state_dict(),
            "generator": self.generator.get_state(),
            "rng": rng_state(),
            "envs": [env_state(env) for env in self.envs],
            "obs": torch.from_numpy(self.obs.copy()),
            "returns": torch.from_numpy(self.returns.copy()),
            "lengths": torch.from_numpy(self.lengths.copy()),
        }

    def save(self, *, best: bool = False) -> None:
        weights = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        self.run.save_checkpoint(
            self.step, weights, None, self.state(), keep_last=self.cfg.keep_last, best=best
        )

    def restore(self) -> None:
        ckpt, state = restore_latest(self.run, self.model)
        with restoring(ckpt):
            self.optimizer.load_state_dict(state["optimizer"])
            self.memory.load_state_dict(state["memory"])
            self.generator.set_state(state["generator"])
            set_rng_state(state["rng"])
            if len(state["envs"]) != len(self.envs):
                raise ValueError("the checkpoint has another number of environments")
            for env, saved in zip(self.envs, state["envs"], strict=True):
                set_env_state(env, saved)
            self.obs = state["obs"].numpy().copy()
            self.returns = state["returns"].numpy().copy()
            self.lengths = state["lengths"].numpy().copy()
            self.step, self.updates = int(state["step"]), int(state["updates"])
            self.episodes, self.best = int(state["episodes"]), float(state["best"])

    def start(self, *, resume: bool, progress: bool) -> None:
        self.log = MetricsLog(self.run.metrics_path, resume_step=self.step if resume else None)
        self.bar = Progress(self.cfg.steps, self.step, enabled=progress, description="act")
        self.clock, self.clock_step = time.perf_counter(), self.step

    def close(self) -> None:
        self.bar.close()
        self.log.close()
        for env in self.envs:
            env.close()

    # --- one iteration: every environment steps once, then the updates due -------------------
    def iteration(self, on_eval) -> None:
        cfg, before = self.cfg, self.step
        obs = torch.tensor(self.obs, dtype=torch.float32)  # a copy: self.obs moves on below
        with torch.no_grad():
            actions, extras = self.model.act(
                obs.to(self.device), step=self.step, generator=self.generator, explore=True
            )
        actions = actions.cpu()
        next_obs, rewards = np.empty_like(self.obs), np.zeros(cfg.num_envs, dtype=np.float32)
        terminated, done = np.zeros(cfg.num_envs, bool), np.zeros(cfg.num_envs, bool)
        for i, env in enumerate(self.envs):
            o, r, terminated[i], truncated, _ = env.step(int(actions[i]))
            next_obs[i], rewards[i], done[i] = o, r, terminated[i] or truncated
            self.returns[i] += r
            self.lengths[i] += 1
            if done[i]:
                self.ended.append((float(self.returns[i]), int(self.lengths[i])))
                self.episodes += 1
                self.returns[i], self.lengths[i] = 0.0, 0
                o, _ = env.reset()
            self.obs[i] = o
        self.memory.add(
            obs, actions, torch.from_numpy(rewards), torch.from_numpy(next_obs),
            torch.from_numpy(terminated).float(), torch.from_numpy(done).float(),
            {k: v.cpu() for k, v in extras.items()},
        )  # fmt: skip
        self.step += cfg.num_envs
        current = torch.tensor(self.obs, dtype=torch.float32)
        for batch in self.memory.batches(self.model, self.step, current, self.generator):
            self.update(batch)
        self.bar.update(self.step)
        crossed = lambda every: self.step // every > before // every  # noqa: E731
        if crossed(cfg.log_every) or self.step >= cfg.steps:
            self.write_log()
        last = self.step >= cfg.steps
        metrics = self.evaluate() if crossed(cfg.eval_every) or last else None
        best = metrics is not None and metrics["val_return"] > self.best
        if best:
            self.best = metrics["val_return"]
        stopping_point = metrics is not None and on_eval is not None  # on_eval may stop here
        if best or crossed(cfg.checkpoint_every) or last or stopping_point:
            self.save(best=best)
        if metrics is not None and on_eval is not None:
            on_eval(self.step, metrics)  # may raise to stop the run: this step is saved

    def update(self, batch: Any) -> None:
        cfg = self.cfg
        if cfg.anneal_lr:
            for group in self.optimizer.param_groups:
                group["lr"] = cfg.lr * max(0.0, 1.0 - self.step / cfg.steps)
        batch = type(batch)(**{k: v.to(self.device) for k, v in vars(batch).items()})
        out = self.model.loss(batch)
        if not torch.isfinite(out["loss"]):
            saved = self.run.latest_checkpoint()
            step = None if saved is None else int(saved.name.removeprefix("step-"))
            value = float(out["loss"].detach())
            raise_diverged(self.step, "the loss is not finite", value, self.run, step)
        self.optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        limit = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), limit)
        self.optimizer.step()
        self.updates += 1
        if isinstance(self.model, TargetNetwork):
            self.model.after_update(self.updates)
        for k, v in {**out, "grad_norm": norm}.items():
            self.losses.setdefault(k, []).append(float(v.detach()))

    # --- logging and evaluation -------------------------------------------------------------------
    def write_log(self) -> None:
        now = time.perf_counter()
        values = {k: float(np.mean(v)) for k, v in self.losses.items()}
        if self.ended:
            values["episode_return"] = float(np.mean([r for r, _ in self.ended]))
            values["episode_length"] = float(np.mean([n for _, n in self.ended]))
        values["episodes"] = self.episodes
        values["updates"] = self.updates
        values["steps_per_s"] = (self.step - self.clock_step) / max(now - self.clock, 1e-9)
        self.log.log(self.step, values)
        shown = values.get("episode_return")
        self.bar.update(self.step, info="" if shown is None else f"return {shown:.1f}")
        self.summary.update(values)
        self.ended, self.losses = [], {}
        self.clock, self.clock_step = now, self.step

    def evaluate(self) -> dict[str, float]:
        returns = evaluate_returns(self.model, self.data, self.cfg.eval_episodes)
        metrics = {"val_return": float(np.mean(returns)), "val_return_std": float(np.std(returns))}
        self.log.log(self.step, metrics)
        self.summary.update(metrics)
        return metrics
