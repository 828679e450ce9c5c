"""The RL family's pieces against hand computations: replay sampling, the TD target (DQN and
Double DQN), target-network updates, the epsilon schedule, GAE, returns to go, the REINFORCE
gradient on a bandit, PPO's clipped objective."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.data.environments import Transitions
from genlab.rl.dqn import DQN, DQNConfig
from genlab.rl.memory import EpisodeBuffer, ReplayBuffer, gae
from genlab.rl.ppo import PPO, PPOConfig, clipped_objective
from genlab.rl.reinforce import Reinforce, ReinforceConfig


def add_steps(memory, n: int, num_envs: int = 1, start: int = 0) -> None:
    """n steps whose observation, reward and action encode the step number."""
    for t in range(start, start + n):
        obs = torch.full((num_envs, 4), float(t))
        memory.add(
            obs, torch.full((num_envs,), t % 2), torch.full((num_envs,), float(t)), obs + 0.5,
            torch.zeros(num_envs), torch.zeros(num_envs), {},
        )  # fmt: skip


def test_replay_buffer_is_a_ring_and_samples_what_it_holds():
    memory = ReplayBuffer(5, 4, 1, batch_size=3, learning_starts=0, train_frequency=1)
    add_steps(memory, 7)  # steps 0..6: 0 and 1 were overwritten by 5 and 6
    assert memory.size == 5 and memory.position == 2
    assert sorted(memory.rewards.tolist()) == [2.0, 3.0, 4.0, 5.0, 6.0]
    batch = memory.sample(200, torch.Generator().manual_seed(0))
    assert set(batch.rewards.tolist()) == {2.0, 3.0, 4.0, 5.0, 6.0}
    assert torch.equal(batch.obs[:, 0], batch.rewards) and torch.equal(
        batch.next_obs, batch.obs + 0.5
    )
    again = memory.sample(200, torch.Generator().manual_seed(0))
    assert torch.equal(batch.obs, again.obs)


def test_replay_updates_come_every_train_frequency_steps_after_learning_starts():
    memory = ReplayBuffer(100, 4, 3, batch_size=2, learning_starts=9, train_frequency=4)
    due = []
    for step in range(3, 31, 3):  # 3 environments: the counter moves by 3
        due.append(len(list(memory.batches(None, step, None, None))) if step >= 9 else 0)
        add_steps(memory, 1, num_envs=3)
    # the multiples of 4 crossed by the moves that end at or after step 9: 8 (6 -> 9), 12, 16,
    # 20, 24, 28
    assert sum(due) == 6 and due[:3] == [0, 0, 1]


def test_replay_state_round_trip():
    memory = ReplayBuffer(5, 4, 1, batch_size=2, learning_starts=0, train_frequency=1)
    add_steps(memory, 3)
    other = ReplayBuffer(5, 4, 1, batch_size=2, learning_starts=0, train_frequency=1)
    other.load_state_dict(memory.state_dict())
    assert torch.equal(other.obs, memory.obs) and other.position == 3 and other.size == 3


def dqn(**kw) -> DQN:
    torch.manual_seed(0)
    return DQN(DQNConfig(hidden=(8,), **kw))


def test_td_target_by_hand():
    """y = r + gamma (1 - terminated) Q_target(s', a*): a* = argmax of the target (DQN) or of
    the online network (Double DQN)."""
    batch = Transitions(
        obs=torch.zeros(2, 4), actions=torch.tensor([0, 1]), rewards=torch.tensor([1.0, 2.0]),
        next_obs=torch.randn(2, 4, generator=torch.Generator().manual_seed(1)),
        terminated=torch.tensor([0.0, 1.0]),
    )  # fmt: skip
    for double in (False, True):
        model = dqn(double=double, gamma=0.9)
        with torch.no_grad():
            for p in model.target.parameters():
                p.add_(0.3)  # a target that differs from the online network
            q_target, q_online = model.target(batch.next_obs), model.q(batch.next_obs)
        pick = q_online.argmax(-1) if double else q_target.argmax(-1)
        expected = 1.0 + 0.9 * float(q_target[0, pick[0]])
        y = model.td_target(batch)
        assert y[0].item() == pytest.approx(expected, rel=1e-6)
        assert y[1].item() == 2.0  # terminated: no bootstrap


def test_target_network_hard_and_polyak_updates():
    model = dqn(target_every=3)
    with torch.no_grad():
        for p in model.q.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.target.parameters()]
    model.after_update(2)  # not due
    assert all(torch.equal(a, b) for a, b in zip(before, model.target.parameters(), strict=True))
    model.after_update(3)
    for t, q in zip(model.target.parameters(), model.q.parameters(), strict=True):
        assert torch.equal(t, q)
    soft = dqn(target_every=1, tau=0.25)
    old = [p.clone() for p in soft.target.parameters()]
    with torch.no_grad():
        for p in soft.q.parameters():
            p.add_(1.0)
    soft.after_update(1)
    for t, q, o in zip(soft.target.parameters(), soft.q.parameters(), old, strict=True):
        assert torch.allclose(t, 0.25 * q + 0.75 * o, atol=1e-6)
    assert not any(p.requires_grad for p in soft.target.parameters())


def test_epsilon_schedule_and_exploration():
    model = dqn(start_epsilon=1.0, end_epsilon=0.1, exploration_steps=100)
    assert model.epsilon(0) == 1.0 and model.epsilon(50) == pytest.approx(0.55)
    assert model.epsilon(100) == pytest.approx(0.1) and model.epsilon(10_000) == pytest.approx(0.1)
    obs = torch.randn(2000, 4, generator=torch.Generator().manual_seed(0))
    greedy = model.greedy(obs)
    explored, _ = model.act(obs, step=0, generator=torch.Generator().manual_seed(1))
    # epsilon 1: every action uniform, so about half differ from the greedy one
    assert 0.4 < (explored != greedy).float().mean() < 0.6
    late, _ = model.act(obs, step=100, generator=torch.Generator().manual_seed(1))
    assert (late != greedy).float().mean() < 0.1  # epsilon 0.1: about 0.05 differ
    assert torch.equal(model.act(obs, step=0, explore=False)[0], greedy)


def test_gae_by_hand():
    """Two steps of one environment; the episode is cut by a time limit after step 1 (done,
    not terminated), so step 1 bootstraps from the value of its final observation."""
    gamma, lam = 0.9, 0.8
    rewards = torch.tensor([[1.0], [2.0]])
    values = torch.tensor([[0.5], [0.25]])
    next_values = torch.tensor([[0.25], [3.0]])  # V(s_1), V(s_final)
    terminated = torch.zeros(2, 1)
    done = torch.tensor([[0.0], [1.0]])
    advantages, returns = gae(rewards, values, next_values, terminated, done, gamma=gamma, lam=lam)
    delta1 = 2.0 + gamma * 3.0 - 0.25
    delta0 = 1.0 + gamma * 0.25 - 0.5
    assert advantages[1, 0].item() == pytest.approx(delta1)
    assert advantages[0, 0].item() == pytest.approx(delta0 + gamma * lam * delta1)
    assert torch.allclose(returns, advantages + values)
    ended, _ = gae(
        rewards, values, next_values, torch.tensor([[0.0], [1.0]]), done, gamma=gamma, lam=lam
    )
    assert ended[1, 0].item() == pytest.approx(2.0 - 0.25)  # terminated: no bootstrap


class ConstantValue(torch.nn.Module):
    def __init__(self, v: float):
        super().__init__()
        self.v = v
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def value(self, obs):
        return torch.full((len(obs),), self.v)


def test_episode_buffer_returns_to_go_and_bootstrap():
    buffer = EpisodeBuffer(1, episodes=2, gamma=0.5)
    agent = ConstantValue(8.0)
    obs = torch.zeros(1, 4)

    def step(reward: float, terminated: float, done: float) -> None:
        buffer.add(obs, torch.zeros(1, dtype=torch.long), torch.tensor([reward]), obs,
                   torch.tensor([terminated]), torch.tensor([done]), {})  # fmt: skip

    step(1.0, 0, 0)
    step(2.0, 1, 1)  # terminated: G = [1 + 0.5 * 2, 2]
    assert list(buffer.batches(agent, 2, obs, None)) == []  # one episode of two
    step(4.0, 0, 1)  # cut by a time limit: G = 4 + 0.5 * V = 8
    (batch,) = buffer.batches(agent, 3, obs, None)
    assert batch.returns.tolist() == [2.0, 2.0, 8.0]


def test_reinforce_gradient_on_a_bandit_is_the_analytic_one():
    """One state, two arms with rewards 1 and 0, no baseline, no normalisation: the loss's
    gradient on a batch holding each arm once, weighted by its probability, is -grad J with
    J = sum_a pi(a) r(a), i.e. -pi(0) (1 - pi(0)) on the logit of arm 0."""
    torch.manual_seed(0)
    config = ReinforceConfig(hidden=(4,), baseline=False, normalize_advantages=False)
    model = Reinforce(config)
    obs = torch.zeros(2, 4)
    with torch.no_grad():
        logits = model.policy(obs[:1])[0]
    pi = logits.softmax(-1)
    # E[G grad log pi(a)] with G = r(a): the batch's mean weights each arm equally, so weight
    # the returns by 2 pi(a) to make the mean the expectation
    batch = Transitions(
        obs, torch.tensor([0, 1]), torch.zeros(2), obs, torch.ones(2),
        returns=torch.tensor([2 * pi[0].item() * 1.0, 0.0]),
    )  # fmt: skip
    last = model.policy[-1]
    expected = (-pi[0] * (1 - pi[0])).item()  # the value loss does not reach the policy
    model.zero_grad()
    model.loss(batch)["loss"].backward()
    assert last.bias.grad[0].item() == pytest.approx(expected, rel=1e-5)
    assert last.bias.grad[1].item() == pytest.approx(-expected, rel=1e-5)


def test_ppo_clipped_objective():
    ratio = torch.tensor([0.5, 1.0, 1.5, 1.5, 0.5])
    advantages = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0])
    # min(r A, clip(r) A): 0.5 (below 1 - eps with A > 0: unclipped, smaller), 1, 1.2 (clipped),
    # -1.5 (A < 0: the larger ratio counts), -0.8 (clipped at 0.8 with A < 0)
    expected = -torch.tensor([0.5, 1.0, 1.2, -1.5, -0.8]).mean()
    assert clipped_objective(ratio, advantages, 0.2).item() == pytest.approx(expected.item())


def test_ppo_loss_at_the_old_policy():
    """At the policy that collected the batch the ratio is 1: nothing is clipped, the KL is 0,
    and the policy loss is minus the mean normalised advantage (0)."""
    torch.manual_seed(0)
    model = PPO(PPOConfig(hidden=(8,)))
    obs = torch.randn(6, 4, generator=torch.Generator().manual_seed(2))
    actions, extras = model.act(obs, step=0, generator=torch.Generator().manual_seed(3))
    batch = Transitions(
        obs, actions, torch.zeros(6), obs, torch.zeros(6), log_probs=extras["log_prob"],
        returns=torch.randn(6, generator=torch.Generator().manual_seed(4)),
        advantages=torch.randn(6, generator=torch.Generator().manual_seed(5)),
        values=extras["value"],
    )  # fmt: skip
    out = model.loss(batch)
    assert out["approx_kl"].item() == pytest.approx(0.0, abs=1e-6)
    assert out["clip_fraction"].item() == 0.0
    assert out["policy_loss"].item() == pytest.approx(0.0, abs=1e-6)
    assert math.isfinite(out["loss"].item())


def test_an_agent_is_not_served_with_a_one_line_reason():
    from genlab.errors import GenlabError
    from genlab.serve.store import describe_model

    with pytest.raises(GenlabError, match="cannot serve player: an agent acts"):
        describe_model("player", "1", dqn(), "memory")
