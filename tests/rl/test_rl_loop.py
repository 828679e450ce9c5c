"""The RL loop end to end: tiny runs learn a trivial environment, resume is exact, environment
states round-trip, `genlab train/evaluate/sample` on an agent and their one-line errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

pytest.importorskip("gymnasium")
import gymnasium as gym

from genlab import api
from genlab.data.environments import EnvironmentData, env_state, set_env_state
from test_cli import assert_one_line_error, run_cli

SIGN = "GenlabTest/Sign-v0"


class Sign(gym.Env):
    """Observe x in {-1, 1}; action 1 pays 1 when x > 0, action 0 when x < 0; 10 steps."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = self._draw()
        return self.x, {}

    def _draw(self):
        return np.array([self.np_random.choice([-1.0, 1.0])], dtype=np.float32)

    def step(self, action):
        reward = float(int(action) == int(self.x[0] > 0))
        self.x = self._draw()
        return self.x, reward, False, False, {}


if SIGN not in gym.registry:
    gym.register(SIGN, entry_point=Sign, max_episode_steps=10)

QUICK = {"train.log_every": "200", "train.eval_every": "1000", "train.checkpoint_every": "1000"}
SMALL = {
    "dqn": {"hidden": "[16]", "learning_starts": "100", "train_frequency": "1", "batch_size": "32",
            "exploration_steps": "500", "target_every": "20", "train.lr": "3e-3"},
    "reinforce": {"hidden": "[16]", "episodes": "4", "train.lr": "1e-2", "train.num_envs": "2"},
    "ppo": {"hidden": "[16]", "num_steps": "32", "train.lr": "1e-2", "train.num_envs": "2"},
}  # fmt: skip


@pytest.mark.parametrize("name", ["dqn", "reinforce", "ppo"])
def test_a_tiny_run_learns_a_trivial_environment(name, tmp_path):
    """2,000 steps: the greedy policy goes from what its random weights do to the best
    possible return (10: every step right)."""
    overrides = {**QUICK, **SMALL[name]}
    run, summary = api.train_run(
        name, f"gym:{SIGN}", tmp_path / name, overrides=overrides, steps=2000, progress=False
    )
    assert summary["val_return"] == 10.0
    with open(run / "metrics.csv", newline="") as f:
        early = float(next(csv.DictReader(f))["episode_return"])
    assert early < 8.0, "the first episodes were already good: the test shows nothing"


class StopAt(Exception):
    pass


def stop_at(step: int):
    def on_eval(at: int, metrics: dict) -> None:
        if at >= step:
            raise StopAt

    return on_eval


@pytest.mark.parametrize("name", ["dqn", "ppo", "reinforce"])
def test_resume_is_exact(name, tmp_path):
    """Stopped after the evaluation at step 1,000 (its checkpoint kept) and resumed, a CartPole
    run ends with the weights of an uninterrupted one: the environments' states, the memory,
    the generators and the optimizer all come back."""
    overrides = {**QUICK, **SMALL[name], "train.eval_episodes": "2"}
    data = "gym:CartPole-v1"
    whole, _ = api.train_run(
        name, data, tmp_path / "whole", overrides=overrides, steps=2000, progress=False
    )
    with pytest.raises(StopAt):
        api.train_run(
            name, data, tmp_path / "cut", overrides=overrides, steps=2000, progress=False,
            on_eval=stop_at(1000),
        )  # fmt: skip
    torch.manual_seed(123)  # the global RNG at resume must not matter
    cut, summary = api.train_run(name, data, tmp_path / "cut", resume=True, progress=False)
    a, b = api.load(whole), api.load(cut)
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), key
    _, again = api.train_run(name, data, cut, resume=True, progress=False)  # nothing left
    assert again["val_return"] == summary["val_return"]


def test_environment_state_round_trip():
    data = EnvironmentData("CartPole-v1")
    env, other = data.make(), data.make()
    env.reset(seed=3)
    for _ in range(5):
        env.step(1)
    other.reset(seed=99)
    set_env_state(other, env_state(env))
    for action in (0, 0, 1, 0, 1, 1, 1, 0, 0, 0) * 5:
        a, b = env.step(action), other.step(action)
        assert np.array_equal(a[0], b[0]) and a[1:4] == b[1:4]
        if a[2] or a[3]:
            assert np.array_equal(env.reset()[0], other.reset()[0])  # the same random stream


def test_train_evaluate_sample_on_the_cli(tmp_path, capsys):
    out = tmp_path / "ppo"
    code, _, err = run_cli(
        capsys, "train", "ppo", "--env", "CartPole-v1", "--steps", "256", "--out", out, "-q",
        "-o", "num_steps=32", "-o", "train.eval_episodes=2",
    )  # fmt: skip
    assert code == 0, err
    code, text, err = run_cli(capsys, "evaluate", out)
    assert code == 0, err
    assert '"test_return"' in text and '"test_solved": false' in text
    assert '"reward_threshold": 475.0' in text
    gif = tmp_path / "play.gif"
    code, _, err = run_cli(capsys, "sample", out, "--n", "2", "--out", gif)
    assert code == 0, err
    from PIL import Image

    with Image.open(gif) as image:
        assert image.is_animated and image.size == (2 * 240, 160)


def test_agent_errors_are_one_line(tmp_path, capsys):
    out = tmp_path / "x"
    cases = [
        (["train", "dqn", "--data", "digits"], "environment"),
        (["train", "ppo", "--env", "Pendulum-v1"], "discrete"),
        (["train", "ppo", "--env", "NoSuchThing-v9"], "NoSuchThing"),
        (["train", "ppo", "--env", "CartPole-v1", "--data", "digits"], "--env"),
        (["train", "vae", "--env", "CartPole-v1"], "environment"),
    ]
    for args, words in cases:
        code, _, err = run_cli(capsys, *args, "--out", out, "--steps", "10", "-q")
        assert_one_line_error(code, err, words)
        assert not out.exists()


def test_a_loss_that_is_not_finite_stops_the_run(tmp_path, monkeypatch):
    from genlab.errors import TrainingDiverged
    from genlab.rl.ppo import PPO

    real = PPO.loss

    def broken(self, batch):
        return {**real(self, batch), "loss": torch.tensor(float("nan"), requires_grad=True)}

    monkeypatch.setattr(PPO, "loss", broken)
    overrides = {**QUICK, **SMALL["ppo"]}
    with pytest.raises(TrainingDiverged, match=r"not finite.*no checkpoint"):
        api.train_run("ppo", "gym:CartPole-v1", tmp_path / "r", overrides=overrides, steps=500,
                      progress=False)  # fmt: skip
