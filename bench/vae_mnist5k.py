"""Benchmark: the default VAE on dynamically binarized mnist-5k, test IWAE NLL after its recipe.

    .venv/bin/python bench/vae_mnist5k.py                      # the default recipe, 2 threads
    .venv/bin/python bench/vae_mnist5k.py --steps 500 -o latent_dim=16 --out /tmp/v.json

Trains `VAE.Config()` with `VAE.train_defaults` through the shared training loop
(`genlab.training.loop.train`) on mnist-5k train+val (4500 images), then evaluates on the 500
test images: the IWAE bound with k = config.iwae_k samples (binarization and importance samples
seeded, so every run sees the same binary test set), the single-sample ELBO, and the ELBO on 500
training images (the overfitting gap). Prints a table and writes JSON (`--out`). The wall time
is the training loop alone, measured with time.perf_counter on this machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, train_and_load, write_json
from genlab.config import apply_overrides, parse_overrides, to_dict
from genlab.contract import config_for_data
from genlab.data.base import batch_inputs
from genlab.metrics.likelihood import negative_log_likelihood
from genlab.training.loop import TrainConfig
from genlab.vae import VAE


def load_splits():
    """mnist-5k train+val (4500) and test (500)."""
    from genlab.data import load_dataset

    return load_dataset("mnist-5k", "train+val"), load_dataset("mnist-5k", "test")


@torch.no_grad()
def mean_elbo(model: VAE, data, *, n: int, seed: int) -> float:
    """Single-sample ELBO (nats) over n examples (a seeded random subset: the splits are sorted
    by class), binarized with a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    n = min(n, len(data))
    indices = torch.randperm(len(data), generator=generator)[:n]
    x = model.prepare(batch_inputs(data.batch(indices)), generator=generator)
    return float(
        torch.cat(
            [model.elbo(x[i : i + 100], generator=generator) for i in range(0, n, 100)]
        ).mean()
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/vae_mnist5k.json")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's steps")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--eval-seed", type=int, default=0, help="binarization + IWAE seed")
    parser.add_argument("-o", "--override", nargs="*", default=[], help="model config key=value")
    parser.add_argument("--run-dir", default=None, help="keep the run here (default: a temp dir)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    train_data, test_data = load_splits()
    model_cfg = config_for_data(VAE.Config(), train_data.spec)
    model_cfg = apply_overrides(model_cfg, parse_overrides(args.override))
    steps = args.steps or VAE.train_defaults["steps"]
    train_cfg = TrainConfig(
        **{
            **VAE.train_defaults,
            "steps": steps,
            "seed": args.seed,
            "device": "cpu",
            "train_split": "train+val",
            "val_split": "",
            # only the final checkpoint and sample grid: the timing is of training itself
            "eval_every": steps,
            "sample_every": steps,
            "checkpoint_every": steps,
            "log_every": 100,
        }
    )
    train_cfg.validate()

    torch.manual_seed(args.seed)
    model = VAE(model_cfg)
    data_id = {"name": "mnist-5k", "options": {}}
    train_s = train_and_load(
        model, "vae", train_data, train_cfg, data=data_id, run_dir=args.run_dir
    )

    start = time.perf_counter()
    nll = negative_log_likelihood(model, test_data, batch_size=100, seed=args.eval_seed)
    eval_s = time.perf_counter() - start
    test_elbo = mean_elbo(model, test_data, n=len(test_data), seed=args.eval_seed)
    train_elbo = mean_elbo(model, train_data, n=500, seed=args.eval_seed)
    result = {
        "benchmark": "vae_mnist5k",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        # other jobs on the machine slow the timing; the 1-minute load average says how busy
        "machine": {**machine(), "load_average_at_end": os.getloadavg()[0]},
        "train_examples": len(train_data),
        "test_examples": nll["nll_examples"],
        "train_seconds": round(train_s, 1),
        "eval_seconds": round(eval_s, 1),
        "test_nll_nats": nll["nll_nats"],
        "bound": f"{nll['nll_bound']}, k={model_cfg.iwae_k}",
        "test_bits_per_dim": nll["bits_per_dim"],
        "test_negative_elbo_nats": -test_elbo,
        "train_negative_elbo_nats": -train_elbo,
        "model_config": to_dict(model_cfg),
        "train_config": to_dict(train_cfg),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    print(
        f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads"
    )
    rows = [
        ("train wall time (s)", f"{train_s:.0f}  ({steps} steps)"),
        (f"test NLL, IWAE k={model_cfg.iwae_k} (nats)", f"{nll['nll_nats']:.2f}"),
        ("test bits/dim", f"{nll['bits_per_dim']:.4f}"),
        ("test -ELBO (nats)", f"{-test_elbo:.2f}"),
        ("train -ELBO, 500 images (nats)", f"{-train_elbo:.2f}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    out = write_json(args.out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
