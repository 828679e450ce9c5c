"""Benchmark: a likelihood model on mnist-5k (flows: dequantized 8-bit; autoregressive models:
8-bit or dynamically binarized), test NLL and bits/dim after a fixed recipe.

    .venv/bin/python bench/likelihood_mnist5k.py --model glow               # the default recipe
    .venv/bin/python bench/likelihood_mnist5k.py --model realnvp --minutes 28
    .venv/bin/python bench/likelihood_mnist5k.py --model gated-pixelcnn -o binarize=true
    .venv/bin/python bench/likelihood_mnist5k.py --model glow --steps 300 -o depth=4 --out /tmp/g.json

Trains the model's default config with its `train_defaults` (or `--steps`, or as many steps as
fit in `--minutes`: the cosine schedule is then laid out over a step count estimated from a
60-step probe of the real loop) through the shared training loop on mnist-5k train+val (4500 images), then
evaluates the 500 test images: -log P(x) in nats and bits/dim (exact for autoregressive models;
the dequantization bound, one noise sample per image, for flows), with the evaluation's
randomness (binarization, dequantization noise) seeded, and the same on 500 training images
(the overfitting gap). For flows it also reports the float32 round-trip error
max |decode(encode(x)) - x| on 100 test images (x in [0, 1]). Prints a table and writes JSON (`--out`);
`--figures DIR` also writes the model's figures. The wall time is the training loop alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, train_and_load, write_json
from genlab.config import apply_overrides, parse_overrides, to_dict
from genlab.contract import config_for_data, train_defaults
from genlab.data import load_dataset
from genlab.data.base import batch_inputs
from genlab.metrics.likelihood import negative_log_likelihood
from genlab.registry import default_config, model_class
from genlab.training.loop import TrainConfig


def steps_for_minutes(model_cls, model_cfg, train_cfg: TrainConfig, data, minutes: float) -> int:
    """How many steps fit in `minutes` of the training loop: 60 steps of the real loop on a
    throw-away copy of the model give the time per step (from the loop's own speed log over
    steps 21-60) and the fixed cost (start-up, the final checkpoint and sample), which is
    taken off the budget."""
    import csv
    import tempfile

    probe = dataclasses.replace(
        train_cfg,
        steps=60,
        eval_every=60,
        sample_every=60,
        sample_n=1,
        checkpoint_every=60,
        log_every=20,
        val_split="",
    )
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "probe"
        total = train_and_load(model_cls(model_cfg), "probe", data, probe, run_dir=run_dir)
        with open(run_dir / "metrics.csv") as f:
            speeds = [float(row["it_per_s"]) for row in csv.DictReader(f) if row.get("it_per_s")]
    per_step = 1 / (sum(speeds[1:]) / len(speeds[1:]))  # steps 21-60: past the warm-up
    fixed = max(0.0, total - 60 * per_step)
    return int((minutes * 60 - fixed) / per_step)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="glow", help="a registered likelihood model")
    parser.add_argument("--out", default=None, help="JSON path (default bench/results/...)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's steps")
    parser.add_argument("--minutes", type=float, default=None, help="train for this long instead")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--eval-seed", type=int, default=0, help="dequantization noise seed")
    parser.add_argument("-o", "--override", nargs="*", default=[], help="model config key=value")
    parser.add_argument("-t", "--train", nargs="*", default=[], help="train config key=value")
    parser.add_argument("--figures", default=None, help="write the model's figures here")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    train_data = load_dataset("mnist-5k", "train+val")
    test_data = load_dataset("mnist-5k", "test")
    model_cls = model_class(args.model)
    model_cfg = config_for_data(default_config(args.model), train_data.spec)
    model_cfg = apply_overrides(model_cfg, parse_overrides(args.override))
    train_cfg = TrainConfig(**{**train_defaults(model_cls, model_cfg), "device": "cpu"})
    train_cfg = apply_overrides(train_cfg, parse_overrides(args.train))
    if args.minutes:
        steps = steps_for_minutes(model_cls, model_cfg, train_cfg, train_data, args.minutes)
    else:
        steps = args.steps or train_cfg.steps
    train_cfg = dataclasses.replace(
        train_cfg,
        steps=steps,
        seed=args.seed,
        train_split="train+val",
        val_split="",
        # only the final checkpoint and one sample: the timing is of training itself
        eval_every=steps,
        sample_every=steps,
        sample_n=1,
        checkpoint_every=steps,
        log_every=100,
    )
    train_cfg.validate()

    torch.manual_seed(args.seed)
    model = model_cls(model_cfg)
    data_id = {"name": "mnist-5k", "options": {}}
    train_s = train_and_load(model, args.model, train_data, train_cfg, data=data_id)

    start = time.perf_counter()
    test = negative_log_likelihood(model, test_data, batch_size=100, seed=args.eval_seed)
    eval_s = time.perf_counter() - start
    subset = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(0))[:500]
    train_nll = negative_log_likelihood(
        model, train_data.subset(subset), batch_size=100, seed=args.eval_seed
    )
    round_trip = None
    if hasattr(model, "encode") and hasattr(model, "decode"):  # flows: float32 invertibility
        with torch.no_grad():
            x = batch_inputs(test_data.batch(torch.arange(100)))
            round_trip = float((model.decode(model.encode(x)) - x).abs().max())
    figures = []
    if args.figures:
        paths = model.visualize(
            test_data, Path(args.figures), generator=torch.Generator().manual_seed(0)
        )
        figures = [str(p) for p in paths]
    result = {
        "benchmark": "likelihood_mnist5k",
        "model": args.model,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {**machine(), "load_average_at_end": os.getloadavg()[0]},
        "train_examples": len(train_data),
        "test_examples": test["nll_examples"],
        "steps": steps,
        "train_seconds": round(train_s, 1),
        "eval_seconds": round(eval_s, 1),
        "test_nll_nats": test["nll_nats"],
        "test_bits_per_dim": test["bits_per_dim"],
        "train_bits_per_dim_500": train_nll["bits_per_dim"],
        "bound": test["nll_bound"],
        "round_trip_max_abs_error": round_trip,
        "model_config": to_dict(model_cfg),
        "train_config": to_dict(train_cfg),
        "parameters": sum(p.numel() for p in model.parameters()),
        "figures": figures,
    }
    print(
        f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"with {torch.get_num_threads()} threads"
    )
    rows = [
        ("model", f"{args.model} ({result['parameters']:,} parameters)"),
        ("train wall time (s)", f"{train_s:.0f}  ({steps} steps)"),
        ("test NLL (nats)", f"{test['nll_nats']:.2f}"),
        ("test bits/dim", f"{test['bits_per_dim']:.4f}"),
        ("train bits/dim, 500 images", f"{train_nll['bits_per_dim']:.4f}"),
    ]
    if round_trip is not None:
        rows.append(("max |decode(encode(x)) - x|", f"{round_trip:.2e}"))
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    out = write_json(args.out or f"bench/results/mnist5k_{args.model}.json", result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
