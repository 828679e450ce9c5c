"""Benchmark: CartPole-v1 solved by DQN, PPO and REINFORCE on the CPU, over 3 seeds.

    .venv/bin/python bench/rl.py                                   # about 30 minutes
    .venv/bin/python bench/rl.py --algos ppo --seeds 0 --max-steps 20000 --eval-every 5000 \
        --run /tmp/r --docs /tmp/d --out /tmp/rl.json              # a smoke test

"Solved" is gymnasium's reward_threshold for CartPole-v1: a mean return of at least 475 over
100 episodes. Each run trains through genlab.api.train_run with its registered defaults (CleanRL's
settings for CartPole: docs/rl.md), evaluates its greedy policy on 100 fixed episodes every
`--eval-every` environment steps (the loop's evaluation, `train.eval_episodes=100`) and stops
at the first evaluation that reaches 475, or at `--max-steps`. Reported per run: the
environment steps and the wall time (training and its evaluations) to solve, the optimizer
updates by then, and `genlab evaluate`'s return on 100 other episodes (test seeds) of the
solving checkpoint. Learning curves (evaluation return against environment steps, every seed)
go to `--docs` with a GIF of a solving PPO policy. Prints a table and writes JSON (`--out`,
default bench/results/rl.json).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json

ENV = "gym:CartPole-v1"
THRESHOLD = 475.0


class Solved(Exception):
    pass


def one_run(algo: str, seed: int, args) -> dict[str, Any]:
    from genlab import api

    run = args.run / f"{algo}-seed{seed}"
    curve: list[tuple[int, float, float]] = []
    start = time.perf_counter()

    def on_eval(step: int, metrics: dict[str, float]) -> None:
        curve.append((step, metrics["val_return"], time.perf_counter() - start))
        if metrics["val_return"] >= THRESHOLD:
            raise Solved

    overrides = {
        "train.eval_every": str(args.eval_every),
        "train.checkpoint_every": str(args.eval_every),
        "train.log_every": str(args.eval_every // 5),
        "train.eval_episodes": "100",
        "train.seed": str(seed),
    }
    solved = False
    try:
        api.train_run(
            algo, ENV, run, overrides=overrides, steps=args.max_steps, progress=False,
            on_eval=on_eval,
        )  # fmt: skip
    except Solved:
        solved = True
    seconds = time.perf_counter() - start
    test = api.evaluate(run, figures=False)  # the last checkpoint: the solving one if solved
    with open(run / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("episode_return")]
    last = curve[-1]
    return {
        "algo": algo,
        "seed": seed,
        "solved": solved,
        "steps": last[0],
        "seconds": round(last[2], 1),
        "wall_seconds": round(seconds, 1),
        "updates": int(float(rows[-1]["updates"])) if rows else 0,
        "test_return": test["test_return"],
        "test_return_std": test["test_return_std"],
        "curve": [(s, round(r, 2)) for s, r, _ in curve],
        "training_returns": [(int(r["step"]), round(float(r["episode_return"]), 2)) for r in rows],
        "run": str(run),
    }


def curves_figure(rows: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    algos = sorted({r["algo"] for r in rows})
    fig, axes = plt.subplots(1, len(algos), figsize=(4.2 * len(algos), 3.4), squeeze=False)
    for ax, algo in zip(axes[0], algos, strict=True):
        for r in (r for r in rows if r["algo"] == algo):
            steps, returns = zip(*r["training_returns"], strict=True)
            (line,) = ax.plot(steps, returns, alpha=0.45, lw=1)
            steps, returns = zip(*r["curve"], strict=True)
            ax.plot(steps, returns, "o-", color=line.get_color(), ms=3, label=f"seed {r['seed']}")
        ax.axhline(THRESHOLD, color="k", ls="--", lw=0.8)
        ax.set(title=f"{algo} on CartPole-v1", xlabel="environment steps", ylabel="return")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("dots: greedy return over 100 episodes; thin lines: training episodes", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(rows: list[dict]) -> dict[str, Any]:
    summary = {}
    print(f"CartPole-v1, solved = mean greedy return >= {THRESHOLD:.0f} over 100 episodes")
    for algo in sorted({r["algo"] for r in rows}):
        mine = [r for r in rows if r["algo"] == algo]
        for r in mine:
            print(
                f"  {algo:10s} seed {r['seed']}  {'solved' if r['solved'] else 'NOT solved'} at "
                f"{r['steps']:>7d} steps, {r['seconds']:7.1f} s, {r['updates']:>6d} updates; "
                f"test return {r['test_return']:.1f} +- {r['test_return_std']:.1f}"
            )
        done = [r for r in mine if r["solved"]]
        summary[algo] = {
            "solved": f"{len(done)}/{len(mine)}",
            "median_steps": float(np.median([r["steps"] for r in done])) if done else None,
            "median_seconds": float(np.median([r["seconds"] for r in done])) if done else None,
        }
        print(f"  {algo:10s} solved {summary[algo]['solved']}, median {summary[algo]}")
    return summary


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", default="dqn,ppo,reinforce")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--max-steps", type=int, default=500_000)
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--run", type=Path, default=Path("runs/bench-rl"))
    parser.add_argument("--docs", type=Path, default=Path("docs/figures/rl"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="bench/results/rl.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [
        one_run(algo, int(seed), args)
        for algo in args.algos.split(",")
        for seed in args.seeds.split(",")
    ]
    files = [str(curves_figure(rows, args.docs / "cartpole-curves.png"))]
    shown = next((r for r in rows if r["algo"] == "ppo" and r["solved"]), None)
    if shown is not None:
        from genlab import api

        path = api.sample(shown["run"], 1, args.docs / "cartpole-ppo.gif", seed=0)
        files.append(str(path))
    result = {
        "benchmark": "rl",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "summary": report(rows),
        "runs": rows,
        "files": files,
        "machine": {**machine(), "load_average_at_end": os.getloadavg()[0]},
    }
    print(f"wrote {write_json(args.out, result)}")
    return result


if __name__ == "__main__":
    main()
