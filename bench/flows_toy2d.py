"""Benchmark: RealNVP and Glow on 2-D densities, test NLL (nats) after a fixed training budget.

    .venv/bin/python bench/flows_toy2d.py
    .venv/bin/python bench/flows_toy2d.py --densities moons --models glow --steps 500
    .venv/bin/python bench/flows_toy2d.py --figures docs/figures/flows

Each model trains with its default config (vector flows: RealNVP 8 couplings, Glow 8 steps)
on `toy2d:NAME` (10,000 training points, FFJORD's generators) for `--steps` Adam steps of
`--batch-size` points (warm-up 100 steps, cosine decay to 10%, gradient clipping at 1, the shared
training loop), then reports the exact NLL of the 2,000 test points (an independent sample) in
nats per point, and the same for the training points. Lower is better; the data's own
differential entropy bounds it from below. `--figures DIR` writes each run's density and
grid figures as DIR/MODEL-DENSITY-density.png and ...-grid.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, train_and_load, write_json
from genlab.config import to_dict
from genlab.contract import config_for_data
from genlab.data import load_dataset
from genlab.metrics.likelihood import negative_log_likelihood
from genlab.registry import default_config, model_class
from genlab.training.loop import TrainConfig


def run_one(name: str, density: str, args: argparse.Namespace) -> dict:
    data = f"toy2d:{density}"
    train_data, test_data = load_dataset(data, "train"), load_dataset(data, "test")
    cls = model_class(name)
    model_cfg = config_for_data(default_config(name), train_data.spec)
    train_cfg = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=100,
        device="cpu",
        seed=args.seed,
        val_split="",
        eval_every=args.steps,
        sample_every=args.steps,
        checkpoint_every=args.steps,
        log_every=100,
    )
    torch.manual_seed(args.seed)
    model = cls(model_cfg)
    seconds = train_and_load(model, name, train_data, train_cfg, data={"name": data})
    test = negative_log_likelihood(model, test_data, batch_size=1000)
    train_nll = negative_log_likelihood(model, train_data, batch_size=1000)
    if args.figures:
        with tempfile.TemporaryDirectory() as tmp:
            paths = model.visualize(
                test_data, Path(tmp), generator=torch.Generator().manual_seed(0)
            )
            out = Path(args.figures)
            out.mkdir(parents=True, exist_ok=True)
            for path in paths:
                (out / f"{name}-{density}-{path.name}").write_bytes(path.read_bytes())
    return {
        "model": name,
        "density": density,
        "test_nll_nats": test["nll_nats"],
        "train_nll_nats": train_nll["nll_nats"],
        "train_seconds": round(seconds, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "model_config": to_dict(model_cfg),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="realnvp,glow")
    parser.add_argument("--densities", default="moons,8gaussians,checkerboard")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--figures", default=None, help="write density and grid figures here")
    parser.add_argument("--out", default="bench/results/flows_toy2d.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    rows = []
    for density in args.densities.split(","):
        for name in args.models.split(","):
            row = run_one(name, density, args)
            rows.append(row)
            print(
                f"{density:<13} {name:<8} test NLL {row['test_nll_nats']:.3f} nats  "
                f"(train {row['train_nll_nats']:.3f})  {row['train_seconds']:.0f} s  "
                f"{row['parameters']:,} parameters",
                flush=True,
            )
    result = {
        "benchmark": "flows_toy2d",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {**machine(), "load_average_at_end": os.getloadavg()[0]},
        "budget": {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr},
        "train_points": 10000,
        "test_points": 2000,
        "results": rows,
    }
    print(f"wrote {write_json(args.out, result)}")
    return result


if __name__ == "__main__":
    main()
