"""Benchmark: WaveNet's generation speed (naive vs fast) and its test NLL on chorales-audio.

    .venv/bin/python bench/wavenet.py                          # speed only, about 1 minute
    .venv/bin/python bench/wavenet.py --train-minutes 30       # + training, evaluation, sounds
    .venv/bin/python bench/wavenet.py --train-minutes 0.5 --pieces 4 --run /tmp/r \
        --docs /tmp/d --out /tmp/wavenet.json                  # a smoke test of the second part

(1) Generation speed, random weights (the cost does not depend on them), batch `--batch`: a
WaveNet of `--stacks` stacks of dilations 1 .. 2^(layers-1), kernel 2, 32 residual / 32 gate /
64 skip channels; the defaults (2 stacks of 1 .. 512) have a receptive field of exactly
R = 2,047 samples. The naive sampler runs the network over the last R inputs for each sample,
so its cost grows until t = R; its steady-state cost per sample is measured as
(time(R + m) - time(R)) / m, m = `--naive-samples`. The fast sampler (per-layer queues) costs the
same at every t: its time over `--fast-samples` samples divided by their number. Also: whether
both samplers give identical samples over R + m samples from one seed (float32), their ratio, and
the real-time factor at 8 kHz (seconds of audio per second of computation, per stream).

(2) With `--train-minutes M`: WaveNet (the same architecture) trains on `chorales-audio` at
8 kHz through genlab.api.train_run for about M minutes of wall time: the step count is planned
from a measured training step (so the cosine schedule ends on time) and an evaluation hook stops
the run at the budget if the machine is slower than planned. Then genlab.api.evaluate scores the
test split: bits per sample beside the unigram and LPC baselines fitted on the training split
(genlab.metrics.audio) in the same call, and 2-second samples and figures go to `--docs`.

Prints a table and writes JSON (`--out`, default bench/results/wavenet.json).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, median_step_seconds, train_to_budget, write_json
from genlab.audio.wavenet import WaveNet, WaveNetConfig, receptive_field
from genlab.config import apply_overrides, to_dict

RATE = 8000


def architecture(args) -> dict:
    return {"stacks": args.stacks, "layers": args.layers, "kernel": 2}


# --- (1) generation speed ----------------------------------------------------------------------
def timed(model: WaveNet, n: int, length: int, fast: bool, seed: int) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    samples = model.synthesize(n, length, generator=torch.Generator().manual_seed(seed), fast=fast)
    return samples, time.perf_counter() - start


def speed(args) -> dict:
    config = WaveNetConfig(sample_rate=RATE, **architecture(args))
    torch.manual_seed(args.seed)
    model = WaveNet(config).eval()
    r, m = receptive_field(config), args.naive_samples
    _, fast_s = timed(model, args.batch, args.fast_samples, True, args.seed)
    fast_ms = 1000 * fast_s / args.fast_samples
    _, naive_r_s = timed(model, args.batch, r, False, args.seed)
    naive, naive_rm_s = timed(model, args.batch, r + m, False, args.seed)
    naive_ms = 1000 * (naive_rm_s - naive_r_s) / m
    fast, fast_rm_s = timed(model, args.batch, r + m, True, args.seed)
    row = {
        "receptive_field": r,
        "receptive_field_ms": 1000 * r / RATE,
        "batch": args.batch,
        "naive_ms_per_sample": round(naive_ms, 3),
        "fast_ms_per_sample": round(fast_ms, 3),
        "speedup": round(naive_ms / fast_ms, 2),
        "naive_realtime_factor": round(1000 / (RATE * naive_ms), 4),
        "fast_realtime_factor": round(1000 / (RATE * fast_ms), 4),
        "identical_samples": bool(torch.equal(naive, fast)),
        "naive_seconds": {"first_R": round(naive_r_s, 2), f"R_plus_{m}": round(naive_rm_s, 2)},
        "fast_seconds": {
            str(args.fast_samples): round(fast_s, 2),
            f"R_plus_{m}": round(fast_rm_s, 2),
        },
        "model_config": to_dict(config),
    }
    print(
        f"generation at R = {r} samples ({row['receptive_field_ms']:.0f} ms at 8 kHz), batch "
        f"{args.batch}, {torch.get_num_threads()} thread(s)\n"
        f"  naive {naive_ms:8.3f} ms/sample  real-time x{row['naive_realtime_factor']:.4f}\n"
        f"  fast  {fast_ms:8.3f} ms/sample  real-time x{row['fast_realtime_factor']:.4f}\n"
        f"  speed-up {row['speedup']:.1f}x  identical samples: {row['identical_samples']}",
        flush=True,
    )
    return row


# --- (2) training on chorales-audio ------------------------------------------------------------
def training_overrides(args) -> dict[str, str]:
    values = {
        **architecture(args),
        "data.pieces": args.pieces,
        "data.segment": args.segment,
        "train.batch_size": args.batch_size,
        "train.lr": args.lr,
        "train.warmup_steps": args.warmup,
        "train.log_every": 50,
        "train.eval_every": args.eval_every,
        "train.checkpoint_every": args.eval_every,  # the hook's stop keeps that step's weights
        "train.eval_batches": 8,
        "train.sample_n": 2,
        "train.seed": args.seed,
        **dict(item.split("=", 1) for item in args.option),
    }
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}


def seconds_per_step(args) -> float:
    """The median wall time of a training step (batch `--batch_size` of chorale segments)."""
    from genlab.contract import config_for_data
    from genlab.data import load_dataset

    data = load_dataset("chorales-audio", "train", pieces=args.pieces, segment=args.segment)
    model_options = {k: v for k, v in training_overrides(args).items() if "." not in k}
    config = config_for_data(apply_overrides(WaveNetConfig(), model_options), data.spec)
    size = args.batch_size
    batches = [data.batch(torch.arange(i * size, (i + 1) * size)) for i in range(4)]
    return median_step_seconds(WaveNet(config), batches, lr=args.lr)


def train_and_evaluate(args) -> dict:
    from genlab import api

    run = Path(args.run)
    trained = train_to_budget(
        "wavenet", "chorales-audio", run, training_overrides(args),
        minutes=args.train_minutes, step_s=seconds_per_step(args), eval_every=args.eval_every,
    )  # fmt: skip
    train_s = trained["train_seconds"]
    result = api.evaluate(run, figures=False, batch_size=16)
    keys = ("bits_per_sample", "unigram_bits_per_sample", "lpc_bits_per_sample", "lpc_order")
    row = {
        **trained,
        **{k: result[k] for k in (*keys, "lpc_residual", "quantizer", "audio_samples")},
        "run": str(run),
    }
    print(
        f"test bits per sample: WaveNet {row['bits_per_sample']:.3f}  unigram "
        f"{row['unigram_bits_per_sample']:.3f}  LPC(order {row['lpc_order']}) "
        f"{row['lpc_bits_per_sample']:.3f}  ({train_s / 60:.1f} min of training)",
        flush=True,
    )
    row["sounds"] = sounds(api.load(run), args)
    return row


def sounds(model: WaveNet, args) -> list[str]:
    """2-second samples as WAV files, and waveforms / spectrograms of them beside 2 s of
    held-out audio (4 consecutive test segments of one chorale) in `--docs`."""
    from genlab.data import batch_inputs, load_dataset
    from genlab.sound import spectrogram_figure, waveform_figure, write_wav

    docs = Path(args.docs)
    generator = torch.Generator().manual_seed(args.seed)
    samples = model.sample(args.samples, generator=generator, seconds=2.0)[:, 0]  # (n, T)
    test = load_dataset("chorales-audio", "test", pieces=args.pieces, segment=args.segment)
    first = torch.arange(min(len(test), -(-2 * RATE // args.segment)))  # ceil(2 s / segment)
    held_out = batch_inputs(test.batch(first)).reshape(-1)[: 2 * RATE]
    paths = [write_wav(docs / f"wavenet-sample-{i}.wav", s, RATE) for i, s in enumerate(samples)]
    paths.append(write_wav(docs / "held-out.wav", held_out, RATE))
    rows = [*samples, held_out]
    titles = [f"WaveNet sample {i}" for i in range(len(samples))] + ["held-out chorale (test)"]
    paths.append(waveform_figure(rows, RATE, docs / "wavenet-waveforms.png", titles=titles))
    paths.append(spectrogram_figure(rows, RATE, docs / "wavenet-spectrograms.png", titles=titles))
    return [str(p) for p in paths]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=2)
    parser.add_argument("--layers", type=int, default=10, help="dilations 1 .. 2^(layers-1)")
    parser.add_argument("--batch", type=int, default=1, help="streams generated at once")
    parser.add_argument("--naive-samples", type=int, default=300)
    parser.add_argument("--fast-samples", type=int, default=8000)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--train-minutes", type=float, default=0.0, help="0: no training")
    parser.add_argument("--pieces", type=int, default=60, help="chorales (train/val/test)")
    parser.add_argument("--segment", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more overrides of the training run, e.g. -o output=logistic_mixture",
    )
    parser.add_argument("--samples", type=int, default=3, help="2-second samples written")
    parser.add_argument("--run", default="runs/bench-wavenet-chorales")
    parser.add_argument("--docs", default="docs/audio")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="1: steadiest on a shared CPU")
    parser.add_argument("--out", default="bench/results/wavenet.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    result = {
        "benchmark": "wavenet",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "speed": None if args.skip_speed else speed(args),
        "chorales": train_and_evaluate(args) if args.train_minutes > 0 else None,
        "machine": {**machine(), "load_average_at_end": os.getloadavg()[0]},
    }
    print(f"wrote {write_json(args.out, result)}")
    return result


if __name__ == "__main__":
    main()
