"""Benchmark: character-level language models on tinyshakespeare against nanoGPT's CPU run.

    .venv/bin/python bench/text_shakespeare.py                      # the default GPT and LSTM
    .venv/bin/python bench/text_shakespeare.py --models gpt -t steps=500 --out /tmp/g.json

nanoGPT's documented CPU run (4 layers, 4 heads, 128-dim, block 64, batch 12, 2000 iterations,
0.8M parameters) reaches validation loss 1.886 after 2 min 18 s on this 2-core machine. Each
model here trains with its default recipe (`train_defaults`, overridable with -t) on the same
data and split (the first 90% of the characters train, the last 10% validation), through the
shared training loop, with validation only at the end. Reported:
- the loop's wall time (start-up, training, the final checkpoint: everything a user waits for);
- the validation loss (nats per character) over every character of the validation split, in
  non-overlapping windows of the training block size, and bits per character;
- training throughput (tokens/s) and MFU: the model's training FLOPs per token (6 N for the
  parameters touched by each token, plus attention's 12 L T C for GPT, as in PaLM's appendix)
  times tokens/s, over the peak FLOP/s of a large float32 matmul measured in the same run with
  the same threads;
- a sample of 300 generated characters after "ROMEO:" (temperature 0.8, seed 0).
Prints a table and writes JSON (`--out`).
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
from genlab.generation import GenerationConfig, complete_text
from genlab.metrics.text import language_model_metrics
from genlab.registry import default_config, model_class
from genlab.training.loop import TrainConfig

NANOGPT = {"val_loss": 1.886, "seconds": 138, "parameters": "0.8M", "iterations": 2000}
TARGETS = {"gpt": (1.80, 138), "lstm": (1.66, 210)}  # (validation loss, seconds)


def peak_matmul_flops(n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of an n x n float32 matmul on this machine's current torch threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def flops_per_token(model: torch.nn.Module) -> float:
    """Training FLOPs per token: 6 N (forward 2 N, backward 4 N) for the parameters every token
    uses (not the embedding table, which is a lookup; a tied head is counted once), plus GPT's
    attention scores and weighted sums, 12 L T C."""
    cfg = model.config
    embedding = cfg.vocab_size * getattr(cfg, "n_embd", 0)
    positions = cfg.block_size * cfg.n_embd if getattr(cfg, "positions", "") == "learned" else 0
    n = sum(p.numel() for p in model.parameters()) - positions
    head = cfg.vocab_size * (cfg.n_embd if hasattr(cfg, "n_head") else cfg.hidden)
    dense = n - embedding + head  # the head matmul runs for every token even when tied
    attention = 12 * cfg.n_layer * cfg.block_size * cfg.n_embd if hasattr(cfg, "n_head") else 0
    return 6 * dense + attention


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="gpt,lstm")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--override", nargs="*", default=[], help="model config key=value")
    parser.add_argument("-t", "--train", nargs="*", default=[], help="train config key=value")
    parser.add_argument("--block-size", type=int, default=None, help="data window (default 64)")
    parser.add_argument("--out", default="bench/results/text_shakespeare.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    peak = peak_matmul_flops()
    print(f"peak float32 matmul: {peak / 1e9:.1f} GFLOP/s with {args.threads} threads", flush=True)

    rows = []
    for name in args.models.split(","):
        cls = model_class(name)
        defaults = train_defaults(cls, default_config(name))
        train_cfg = TrainConfig(**{**defaults, "device": "cpu"})
        train_cfg = apply_overrides(train_cfg, parse_overrides(args.train))
        options = {"block_size": args.block_size or default_config(name).block_size}
        train_data = load_dataset("tinyshakespeare", "train", **options)
        val_data = load_dataset("tinyshakespeare", "val", **options)
        model_cfg = config_for_data(default_config(name), train_data.spec)
        model_cfg = apply_overrides(model_cfg, parse_overrides(args.override))
        steps = train_cfg.steps
        train_cfg = dataclasses.replace(
            train_cfg,
            seed=args.seed,
            val_split="",
            eval_every=steps,
            sample_every=steps,
            sample_n=1,
            checkpoint_every=steps,
            log_every=max(1, steps // 10),
        )
        train_cfg.validate()
        torch.manual_seed(args.seed)
        model = cls(model_cfg)
        data_id = {"name": "tinyshakespeare", "options": options}
        seconds = train_and_load(model, name, train_data, train_cfg, data=data_id)
        model.tokenizer = train_data.tokenizer
        metrics = language_model_metrics(model, val_data, batch_size=64)
        tokens = steps * train_cfg.batch_size * train_data.block_size
        throughput = tokens / seconds
        mfu = flops_per_token(model) * throughput / peak
        sample = complete_text(
            model,
            model.tokenizer,
            "ROMEO:",
            GenerationConfig(max_new_tokens=300, temperature=0.8, seed=0),
        )
        target_loss, target_seconds = TARGETS.get(name, (None, None))
        row = {
            "model": name,
            "parameters": sum(p.numel() for p in model.parameters()),
            "steps": steps,
            "batch_size": train_cfg.batch_size,
            "block_size": train_data.block_size,
            "train_seconds": round(seconds, 1),
            "val_loss": round(metrics["loss"], 4),
            "val_bits_per_char": round(metrics["bits_per_char"], 4),
            "val_characters": metrics["characters"],
            "tokens_per_second": round(throughput),
            "mfu": round(mfu, 4),
            "target": {"val_loss": target_loss, "seconds": target_seconds},
            "meets_target": None
            if target_loss is None
            else bool(metrics["loss"] <= target_loss and seconds <= target_seconds),
            "sample": "ROMEO:" + sample,
            "model_config": to_dict(model_cfg),
            "train_config": to_dict(train_cfg),
        }
        rows.append(row)
        print(
            f"{name:<5} {row['parameters']:>9,} params  {steps} steps x {train_cfg.batch_size} x "
            f"{train_data.block_size}  {seconds:6.1f} s  val loss {metrics['loss']:.4f} "
            f"({metrics['bits_per_char']:.3f} bits/char)  {throughput:,.0f} tokens/s  "
            f"MFU {100 * mfu:.1f}%  target met: {row['meets_target']}",
            flush=True,
        )
        print(row["sample"], flush=True)
    result = {
        "benchmark": "text_shakespeare",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {**machine(), "load_average_at_end": os.getloadavg()[0]},
        "peak_matmul_gflops": round(peak / 1e9, 1),
        "reference_nanogpt_cpu": NANOGPT,
        "results": rows,
    }
    print(f"wrote {write_json(args.out, result)}")
    return result


if __name__ == "__main__":
    main()
