"""Speed of the opt-in training paths against eager fp32, measured in the same run.

    python bench/training_speed.py [--steps 60] [--out bench/results/training_speed.json]

Times optimizer steps of the default VAE on mnist-5k batches (after warm-up steps, which for
torch.compile include compilation) for: eager fp32 (the baseline), torch.compile fp32, eager bf16
autocast. Prints steps/s and the ratio to the baseline, and the loss of the first step of each
path (the same batch and seed, so the paths can be compared for equality too).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json
from genlab.contract import config_for_data
from genlab.data import load_dataset
from genlab.registry import model_class
from genlab.training.loop import _compiled, _LossModule, autocast_context


def measure(compile_: bool, precision: str, steps: int, warmup: int, data) -> dict:
    cls = model_class("vae")
    torch.manual_seed(0)
    model = cls(config_for_data(cls.Config(), data.spec))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = _compiled(_LossModule(model), compile_)
    g = torch.Generator().manual_seed(0)
    batches = [data.batch(torch.randint(len(data), (64,), generator=g)) for _ in range(8)]
    first = None
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        torch.manual_seed(i)
        with autocast_context(torch.device("cpu"), precision):
            loss = loss_fn(batches[i % len(batches)])["loss"]
        if first is None:
            first = float(loss.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    elapsed = time.perf_counter() - start
    return {"steps_per_s": steps / elapsed, "first_loss": first}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", default="bench/results/training_speed.json")
    args = parser.parse_args()
    data = load_dataset("mnist-5k", "train")
    rows = {}
    for name, compile_, precision in (
        ("eager fp32", False, "fp32"),
        ("compile fp32", True, "fp32"),
        ("eager bf16", False, "bf16"),
    ):
        rows[name] = measure(compile_, precision, args.steps, args.warmup, data)
    base = rows["eager fp32"]["steps_per_s"]
    print(f"{'path':<14} {'steps/s':>9} {'ratio':>7} {'first loss':>11}")
    for name, row in rows.items():
        row["ratio_vs_eager_fp32"] = row["steps_per_s"] / base
        print(
            f"{name:<14} {row['steps_per_s']:>9.2f} {row['ratio_vs_eager_fp32']:>7.2f} {row['first_loss']:>11.4f}"
        )
    info = machine()
    print(
        f"machine: {info['cpu_count']} CPUs, {info['torch_threads']} torch threads, torch {info['torch']}"
    )
    write_json(args.out, {"machine": info, "steps": args.steps, "batch_size": 64, "paths": rows})


if __name__ == "__main__":
    main()
