"""Benchmark: every GAN at its default settings on mnist-5k; domain FID against real test digits.

    .venv/bin/python bench/gan_mnist5k.py                         # all five variants, 2 threads
    .venv/bin/python bench/gan_mnist5k.py --variants cgan --steps 200 --out /tmp/g.json

For each variant: `genlab train <variant> --data mnist-5k` with its defaults (train_defaults,
the Config defaults), timed; then, from the EMA generator, --n samples are scored with genlab's
digit classifier (the offline domain extractor of genlab.metrics.digits, >= 98% on mnist-5k
test): FID (digits) and KID (digits) against the 500 real test images, IS (digits). The same
numbers for the *untrained* generator (same config and seed, no steps) and for real training
images drawn with replacement (the floor a perfect generator would reach against 500 test
images) sit beside them. For the conditional GAN, the classifier also labels 1000 samples per
requested class; the table reports the fraction it labels as the requested class.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json
from genlab.api import build_model, load, train_run
from genlab.contract import config_for_data
from genlab.data import load_dataset
from genlab.metrics.digits import load_digits_extractor
from genlab.metrics.evaluate import SampleMetricOptions, evaluate_samples
from genlab.registry import default_config

VARIANTS = ("dcgan", "wgan", "wgan-gp", "cgan", "stylegan")
REFERENCE = {"data": "mnist-5k", "options": {}, "split": "test"}


class TrainImages:
    """A 'generator' that returns real training images (with replacement): the FID floor."""

    def __init__(self):
        self.x = load_dataset("mnist-5k", "train").batch(torch.arange(4000))[0]

    def sample(self, n: int, *, generator=None) -> torch.Tensor:
        return self.x[torch.randint(len(self.x), (n,), generator=generator)]


def scores(model, test, n: int) -> dict[str, float]:
    options = SampleMetricOptions(("fid", "kid", "is"), n=n, features="digits", seed=0)
    out = evaluate_samples(model, test, REFERENCE, options)
    return {k: out[k] for k in ("fid_digits", "kid_digits_mean", "is_digits_mean") if k in out}


@torch.no_grad()
def class_accuracy(model, per_class: int = 1000) -> dict[str, float]:
    """The fraction of samples of class k that the digit classifier labels k, per class."""
    classifier = load_digits_extractor()
    hits = {}
    for k in range(10):
        g = torch.Generator().manual_seed(k)
        x = model.sample(per_class, generator=g, labels=k)
        logits = classifier(classifier.preprocess(x))["logits"]
        hits[k] = float((logits.argmax(1) == k).float().mean())
    return {"overall": sum(hits.values()) / 10, **{str(k): v for k, v in hits.items()}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/gan_mnist5k.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--steps", type=int, default=None, help="override every default")
    parser.add_argument("--n", type=int, default=5000, help="generated samples per FID")
    parser.add_argument("--runs", default=None, help="keep the runs here (default: temp dir)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    test = load_dataset("mnist-5k", "test")
    spec = load_dataset("mnist-5k", "train").spec

    rows = [{"variant": "real train images", **scores(TrainImages(), test, args.n)}]
    print(f"{'real train images':<18} FID(digits) {rows[0]['fid_digits']:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants.split(","):
            torch.manual_seed(0)
            untrained = build_model(variant, config_for_data(default_config(variant), spec))
            untrained.eval()
            out = Path(args.runs or tmp) / variant
            start = time.perf_counter()
            _, summary = train_run(variant, "mnist-5k", out, steps=args.steps, progress=False)
            seconds = time.perf_counter() - start
            trained = load(out)
            row = {
                "variant": variant,
                "steps": summary["step"],
                "train_seconds": round(seconds, 1),
                "untrained": scores(untrained, test, args.n),
                **scores(trained, test, args.n),
                "final_losses": {k: v for k, v in summary.items() if k != "step"},
                "config": dataclasses.asdict(trained.config),
            }
            if variant == "cgan":
                row["class_accuracy"] = class_accuracy(trained)
            rows.append(row)
            extra = (
                f"  classifier agrees with the label: {100 * row['class_accuracy']['overall']:.1f}%"
                if "class_accuracy" in row
                else ""
            )
            print(
                f"{variant:<18} FID(digits) {row['fid_digits']:.2f} "
                f"(untrained {row['untrained']['fid_digits']:.1f})  "
                f"KID {row['kid_digits_mean']:.4f}  IS {row['is_digits_mean']:.2f}  "
                f"{row['steps']} steps in {seconds / 60:.1f} min{extra}",
                flush=True,
            )
    result = {
        "benchmark": "gan_mnist5k",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {**machine(), "load_average_at_end": os.getloadavg()[0]},
        "n_generated": args.n,
        "reference": "mnist-5k test (500 images), digit-classifier features",
        "rows": rows,
    }
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
