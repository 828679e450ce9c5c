"""Benchmark: mode coverage on the 8-Gaussians toy, with and without the stability tools.

    .venv/bin/python bench/gan_toy.py                   # every setting, 3 seeds, 2 threads
    .venv/bin/python bench/gan_toy.py --seeds 1 --steps 500 --out /tmp/toy.json

Each setting trains an MLP GAN (genlab train <model> --data toy2d:8gaussians with the -o options
listed) from scratch for --steps generator steps, then draws 2500 samples from the generator (no EMA, see COMMON)
and reports the modes covered (>= 20% of a fair share of high-quality samples, PacGAN's rule),
the fraction of high-quality samples (within 3 std of a mode) and the KL of the mode histogram
to uniform (genlab.metrics.modes). Mean and per-seed values; wall time per run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json
from genlab.api import load, train_run
from genlab.metrics.modes import EIGHT_GAUSSIAN_STD, eight_gaussian_centres, mode_coverage

MLP = {"z_dim": "2", "hidden": "128", "mlp_layers": "3"}
# Every run: batch 256, lr 1e-3 for both players (the CPU-sized default of 2e-4 needs ~5x the
# steps on this toy), no EMA (the raw generator: an average of a generator that still moves
# between modes would put samples between them).
COMMON = {"train.batch_size": "256", "train.lr_g": "1e-3", "train.lr_d": "1e-3"}
COMMON |= {"train.ema_decay": "0", "train.log_every": "500"}
# (name, model, options): the stability tools switched on one family at a time
SETTINGS = [
    ("minimax, no tools", "dcgan", {"loss": "minimax"}),
    ("non-saturating, no tools", "dcgan", {}),
    (
        "non-saturating + spectral norm + instance noise + label smoothing",
        "dcgan",
        {"spectral_norm": "true", "train.instance_noise": "0.1", "train.label_smoothing": "0.1"},
    ),
    (
        "hinge + spectral norm + TTUR (lr_d = 4 lr_g)",
        "dcgan",
        {"loss": "hinge", "spectral_norm": "true", "train.lr_g": "5e-4", "train.lr_d": "2e-3"},
    ),
    ("non-saturating + R1 (gamma 0.1)", "dcgan", {"r1_gamma": "0.1"}),
    ("WGAN (weight clipping, RMSprop, n_critic 5)", "wgan", {}),
    ("WGAN-GP (gradient penalty, n_critic 5)", "wgan-gp", {"train.betas": "(0.5, 0.9)"}),
]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/gan_toy.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2000, help="generator steps per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=2500)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model_name, options in SETTINGS:
            per_seed = []
            for seed in range(args.seeds):
                overrides = {**MLP, **COMMON, "train.sample_every": str(args.steps), **options}
                out = Path(tmp) / f"{len(rows)}-{seed}"
                start = time.perf_counter()
                train_run(
                    model_name,
                    "toy2d:8gaussians",
                    out,
                    overrides=overrides,
                    steps=args.steps,
                    seed=seed,
                    progress=False,
                )
                seconds = time.perf_counter() - start
                model = load(out)
                with torch.no_grad():
                    x = model.sample(args.samples, generator=torch.Generator().manual_seed(seed))
                result = mode_coverage(x, eight_gaussian_centres(), EIGHT_GAUSSIAN_STD)
                per_seed.append({**result, "seed": seed, "seconds": round(seconds, 1)})
            rows.append(
                {
                    "setting": name,
                    "model": model_name,
                    "options": {**MLP, **options},
                    "modes_covered_mean": sum(r["modes_covered"] for r in per_seed) / len(per_seed),
                    "high_quality_mean": sum(r["high_quality"] for r in per_seed) / len(per_seed),
                    "kl_modes_mean": sum(r["kl_modes"] for r in per_seed) / len(per_seed),
                    "runs": per_seed,
                }
            )
            r = rows[-1]
            print(
                f"{name:<68} modes {r['modes_covered_mean']:.1f}/8 "
                f"({', '.join(str(s['modes_covered']) for s in per_seed)})  "
                f"high-quality {100 * r['high_quality_mean']:.1f}%  KL {r['kl_modes_mean']:.3f}  "
                f"{sum(s['seconds'] for s in per_seed) / len(per_seed):.0f} s/run",
                flush=True,
            )
    result = {
        "benchmark": "gan_toy",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {**machine(), "load_average_at_end": os.getloadavg()[0]},
        "steps": args.steps,
        "samples": args.samples,
        "settings": rows,
    }
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
