"""Benchmark: naive against fast sampling of the autoregressive image models, 28x28 images.

    .venv/bin/python bench/autoregressive_sampling.py
    .venv/bin/python bench/autoregressive_sampling.py --models gated-pixelcnn --n 16 --binarize

Each model is built with its default config for 1x28x28 images (random weights: the cost of
sampling does not depend on them) and draws `--n` images twice from the same seed: with the
naive sampler (the whole network for each of the 784 values) and the fast one (per-row caches,
see genlab/autoregressive/base.py). Prints both wall times, the ratio and whether the two sets
of images are identical, and writes JSON (`--out`).
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
from common import machine, write_json
from genlab.config import to_dict
from genlab.registry import default_config, model_class

MODELS = "pixelcnn,gated-pixelcnn,pixelrnn-row,pixelrnn-diag"


def timed_sample(model, n: int, seed: int, naive: bool) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    images = model.sample(n, generator=torch.Generator().manual_seed(seed), naive=naive)
    return images, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--n", type=int, default=8, help="images per sampler")
    parser.add_argument("--binarize", action="store_true", help="Bernoulli outputs (else 8-bit)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="bench/results/autoregressive_sampling.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    rows = []
    for name in args.models.split(","):
        config = dataclasses.replace(  # the variant's config (pixelrnn-diag: layer="diagonal")
            default_config(name), data_shape=(1, 28, 28), binarize=args.binarize
        )
        torch.manual_seed(args.seed)
        model = model_class(name)(config).eval()
        fast, fast_s = timed_sample(model, args.n, args.seed, naive=False)
        naive, naive_s = timed_sample(model, args.n, args.seed, naive=True)
        row = {
            "model": name,
            "naive_seconds": round(naive_s, 2),
            "fast_seconds": round(fast_s, 2),
            "speedup": round(naive_s / fast_s, 2),
            "identical": bool(torch.equal(fast, naive)),
            "model_config": to_dict(config),
        }
        rows.append(row)
        print(
            f"{name:<15} naive {naive_s:7.1f} s  fast {fast_s:6.1f} s  "
            f"speed-up {row['speedup']:5.1f}x  identical: {row['identical']}",
            flush=True,
        )
    result = {
        "benchmark": "autoregressive_sampling",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {**machine(), "load_average_at_end": os.getloadavg()[0]},
        "images": args.n,
        "shape": [1, 28, 28],
        "binarize": args.binarize,
        "results": rows,
    }
    print(f"wrote {write_json(args.out, result)}")
    return result


if __name__ == "__main__":
    main()
