"""An agent's numbers (data kind "environment"): the returns of greedy episodes.

`genlab evaluate RUN` plays EPISODES episodes with the agent's greedy actions (contract.Agent's
`act(..., explore=False)`) on seeds of their own per split and seed (never the training loop's
evaluation seeds), and reports the mean, spread and range of their returns and lengths. Where
the environment states the return at which it counts as solved (gymnasium's reward_threshold:
475 for CartPole-v1), `<split>_solved` says whether the mean return reaches it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

EPISODES = 100  # the usual "solved" criterion is a mean over 100 episodes
# what eval.json's keys mean ({split}_<term>; genlab.metrics.likelihood.key_definitions)
TERMS = {
    "return": "the mean return (sum of rewards) of {n} greedy episodes on the split's seeds",
    "return_std": "the standard deviation of those {n} returns",
    "return_min": "the lowest of those {n} returns",
    "return_max": "the highest of those {n} returns",
    "episode_length": "the mean number of steps of those {n} episodes",
    "episodes": "the number of greedy episodes played",
    "solved": "whether {split}_return reaches the environment's reward_threshold",
}
TERMS = {k: v.replace("{n}", str(EPISODES)) for k, v in TERMS.items()}
SPLIT_SEEDS = {"train": 3 * 10**6, "val": 4 * 10**6, "test": 5 * 10**6}


def episode_returns(
    model: Any, data: Any, split: str, *, batch_size: int, seed: int, reference: Any = None
) -> dict[str, Any]:
    from genlab.data.environments import make, play

    device = next(model.parameters()).device
    model.eval()

    def greedy(obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.act(obs.to(device), step=0, explore=False)[0].cpu()

    first = SPLIT_SEEDS.get(split, 6 * 10**6) + seed * EPISODES
    episodes = play(greedy, data, range(first, first + EPISODES))
    returns = np.array([e.total for e in episodes])
    lengths = np.array([len(e) for e in episodes])
    result: dict[str, Any] = {
        f"{split}_return": float(returns.mean()),
        f"{split}_return_std": float(returns.std()),
        f"{split}_return_min": float(returns.min()),
        f"{split}_return_max": float(returns.max()),
        f"{split}_episode_length": float(lengths.mean()),
        f"{split}_episodes": EPISODES,
    }
    env = make(data.name)
    threshold = None if env.spec is None else env.spec.reward_threshold
    env.close()
    if threshold is not None:
        result["reward_threshold"] = float(threshold)
        result[f"{split}_solved"] = bool(returns.mean() >= threshold)
    return result
