"""Benchmark: GPT generation with and without the KV cache (same tokens, the speed-up).

    .venv/bin/python bench/text_generation.py
    .venv/bin/python bench/text_generation.py --block-size 256 --new-tokens 500 --run runs/gpt

A GPT of the default shape, one of nanoGPT's shakespeare-char shape (the `gpu` preset: 6 layers,
384 wide), or a trained run's model (`--run`), with `--block-size` positions,
generates `--new-tokens` tokens after a one-token prompt, twice from the same seed: re-reading
the whole visible context for every token (no cache) and feeding one token at a time against
the cached keys and values. Both follow the same context window (genlab.generation: when
the window is full it jumps to keep the last half block), so their tokens must be identical;
the script checks it and prints both wall times (the fastest of `--repeats` alternating runs:
a tiny model's step is dominated by per-operation overhead and this shared machine's noise)
and the ratio. Also the same for the LSTM
(carried state against re-reading everything). Writes JSON (`--out`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json
from genlab.config import to_dict
from genlab.registry import config_from, model_class


def timed(model, new_tokens: int, seed: int, use_cache: bool) -> tuple[torch.Tensor, float]:
    prompt = torch.zeros(1, 1, dtype=torch.long)
    start = time.perf_counter()
    stream = model.generate(
        prompt,
        generator=torch.Generator().manual_seed(seed),
        use_cache=use_cache,
        max_new_tokens=new_tokens,
        temperature=1.0,
    )
    tokens = torch.stack(list(stream), dim=1)
    return tokens, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=500)
    parser.add_argument(
        "--models", default="gpt,gpt:gpu,lstm", help="NAME or NAME:PRESET (the preset's shape)"
    )
    parser.add_argument("--run", default=None, help="a trained GPT run instead of random weights")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each path; the fastest")
    parser.add_argument("--out", default="bench/results/text_generation.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    rows = []
    for entry in args.models.split(","):
        name, _, preset = entry.partition(":")
        if args.run and name == "gpt":
            from genlab.api import load

            model = load(args.run)
        else:
            cls = model_class(name)
            shape = cls.presets[preset]["model_config"] if preset else {}
            torch.manual_seed(args.seed)
            config = config_from(name, {**shape, "vocab_size": 65, "block_size": args.block_size})
            model = cls(config).eval()
        timed(model, 8, args.seed, True)  # warm-up
        cached_times, full_times = [], []
        for _ in range(args.repeats):  # alternating, so a slow spell of the machine hits both
            cached, seconds = timed(model, args.new_tokens, args.seed, True)
            cached_times.append(seconds)
            full, seconds = timed(model, args.new_tokens, args.seed, False)
            full_times.append(seconds)
        cached_s, full_s = min(cached_times), min(full_times)
        row = {
            "model": entry,
            "parameters": sum(p.numel() for p in model.parameters()),
            "block_size": model.block_size,
            "new_tokens": args.new_tokens,
            "no_cache_seconds": round(full_s, 3),
            "cache_seconds": round(cached_s, 3),
            "speedup": round(full_s / cached_s, 2),
            "identical_tokens": bool(torch.equal(cached, full)),
            "model_config": to_dict(model.config),
        }
        rows.append(row)
        print(
            f"{entry:<8} {row['parameters']:>10,} params  block {model.block_size}: {args.new_tokens} tokens  no cache "
            f"{full_s:6.2f} s  cache {cached_s:6.2f} s  speed-up {row['speedup']:5.1f}x  "
            f"identical: {row['identical_tokens']}",
            flush=True,
        )
    result = {
        "benchmark": "text_generation",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {**machine(), "load_average_at_end": os.getloadavg()[0]},
        "results": rows,
    }
    print(f"wrote {write_json(args.out, result)}")
    return result


if __name__ == "__main__":
    main()
