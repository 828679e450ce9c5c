"""Speed of the metric code paths: Inception feature extraction and a 10k x 10k FID.

    python bench/metrics_speed.py [--threads 2] [--images 48] [--batch 16] [--fid-n 10000]

1. Images/s of the FID Inception-v3 on 299x299 inputs under torch.inference_mode, batched, for
   the plain NCHW path (the baseline) and the channels_last path (genlab's default), measured in
   the same run, plus the ratio. The weights are random (the real file is not needed for speed:
   the arithmetic is the same); the preprocessing (8-bit rounding, TF1 resize from 28x28 grey)
   is timed separately.
2. Wall time of FID between two sets of 10k 2048-d features: streamed mean/covariance (float64,
   batches of 500, as the evaluation does) and the Frechet distance (eigenvalues of S1 S2).
Prints a table and writes JSON (default bench/results/metrics_speed.json). Peak memory is the
process's maximum RSS: extraction keeps one batch of images, FID two 2048x2048 float64 matrices.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json
from genlab.metrics.fid import RunningStatistics, frechet_distance
from genlab.metrics.inception import FIDInceptionV3, InceptionExtractor


def images_per_second(extractor: InceptionExtractor, batches: list[torch.Tensor]) -> float:
    with torch.inference_mode():
        extractor(batches[0])  # warm-up (allocator, kernels)
        start = time.perf_counter()
        for x in batches[1:]:
            extractor(x)
        elapsed = time.perf_counter() - start
    return sum(len(x) for x in batches[1:]) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=48, help="timed images per path")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--fid-n", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--out", default="bench/results/metrics_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    network = FIDInceptionV3().eval()
    plain = InceptionExtractor(network, channels_last=False)
    grey = torch.rand(args.batch, 1, 28, 28)
    start = time.perf_counter()
    for _ in range(4):
        prepared = plain.preprocess(grey)  # (B, 3, 299, 299)
    preprocess_rate = 4 * args.batch / (time.perf_counter() - start)
    n_batches = 1 + max(1, args.images // args.batch)  # + one warm-up batch
    nchw = [prepared.clone() for _ in range(n_batches)]
    rate_plain = images_per_second(plain, nchw)
    fast = InceptionExtractor(FIDInceptionV3().eval(), channels_last=True)
    fast.network.load_state_dict(network.state_dict())
    cl = [x.contiguous(memory_format=torch.channels_last) for x in nchw]
    rate_cl = images_per_second(fast, cl)
    del nchw, cl

    gen = torch.Generator().manual_seed(0)
    mix = torch.randn(args.dim, args.dim, generator=gen) / args.dim**0.5  # correlated features
    timings = {}
    start = time.perf_counter()
    stats = []
    for shift in (0.0, 0.1):
        running = RunningStatistics()
        for _ in range(0, args.fid_n, 500):
            batch = torch.relu(torch.randn(500, args.dim, generator=gen) @ mix + shift)
            running.update(batch)
        stats.append((running.mean(), running.covariance()))
    timings["statistics_s"] = time.perf_counter() - start
    start = time.perf_counter()
    fid = frechet_distance(stats[0][0], stats[0][1], stats[1][0], stats[1][1])
    timings["frechet_s"] = time.perf_counter() - start
    timings["total_s"] = timings["statistics_s"] + timings["frechet_s"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    rows = [
        ("Inception 299x299, NCHW (baseline)", f"{rate_plain:.2f} images/s", "1.00x"),
        (
            "Inception 299x299, channels_last",
            f"{rate_cl:.2f} images/s",
            f"{rate_cl / rate_plain:.2f}x",
        ),
        ("preprocess 28x28 grey -> 299x299", f"{preprocess_rate:.0f} images/s", ""),
        (
            f"FID {args.fid_n} x {args.fid_n}, {args.dim}-d: statistics",
            f"{timings['statistics_s']:.2f} s",
            "",
        ),
        (
            f"FID {args.fid_n} x {args.fid_n}, {args.dim}-d: Frechet distance",
            f"{timings['frechet_s']:.2f} s",
            "",
        ),
        (
            f"FID {args.fid_n} x {args.fid_n}, {args.dim}-d: total",
            f"{timings['total_s']:.2f} s",
            "",
        ),
        ("peak RSS of this process", f"{peak_mb:.0f} MB", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  {'value':>16}  ratio")
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>16}  {ratio}")
    print(
        f"(random Inception weights; {args.images} timed images per path in batches of "
        f"{args.batch}; torch threads {args.threads}; FID value {fid:.3f})"
    )
    path = write_json(
        args.out,
        {
            "machine": machine(),
            "command": " ".join(["python", *sys.argv]),
            "inception": {
                "weights": "random (speed only)",
                "batch": args.batch,
                "timed_images": (n_batches - 1) * args.batch,
                "nchw_images_per_s": rate_plain,
                "channels_last_images_per_s": rate_cl,
                "channels_last_ratio": rate_cl / rate_plain,
                "preprocess_images_per_s": preprocess_rate,
            },
            "fid": {"n": args.fid_n, "dim": args.dim, "value": fid, **timings},
            "peak_rss_mb": peak_mb,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
