"""Benchmark: policy-gradient fine-tuning of the char GPT (pg-lm, RLOO with a KL penalty) toward
a programmatic reward, at two KL coefficients, on the CPU.

    .venv/bin/python bench/pg_lm.py                    # about 12 minutes
    .venv/bin/python bench/pg_lm.py --gpt-steps 50 --steps 10 --run /tmp/p --docs /tmp/d \
        --out /tmp/pg.json                             # a smoke test

(1) A character GPT (4 layers, 128 wide, windows of 64) is trained on tinyshakespeare
    (`--gpt-steps`). (2) pg-lm starts from it twice, with kl_coef `--kl` (a weak and a strong
    penalty), each for `--steps` steps of 8 prompts x 4 samples, reward "keyword" (the word
    `--keyword` per 100 characters). Reported per run: the reward, the KL to the start (nats
    per 48-token continuation) and the entropy per token at the start and the end, the reward of
    the data's own continuations for comparison, and samples of the same prompts before and
    after. Curves go to `--docs`; JSON to `--out` (default bench/results/pg_lm.json).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json

DATA = "tinyshakespeare"
GPT = {"n_layer": "4", "n_head": "4", "n_embd": "128", "data.block_size": "64"}
PROMPTS = ("ROMEO:\n", "First Citizen:\nWe are", "KING HENRY:\nMy lord,")


def rows_of(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("reward")]


def samples(run: Path, seed: int) -> list[str]:
    """96 tokens after each prompt at temperature 1, the same seeds for every model."""
    from genlab import api
    from genlab.generation import GenerationConfig, generate_ids

    model = api.load(run)
    texts = []
    for i, prompt in enumerate(PROMPTS):
        ids = torch.tensor([model.tokenizer.encode(prompt)])
        settings = GenerationConfig(max_new_tokens=96)
        tokens = generate_ids(
            model, ids, settings, generator=torch.Generator().manual_seed(seed + i)
        )
        texts.append(prompt + model.tokenizer.decode(torch.stack(list(tokens), 1)[0].tolist()))
    return texts


def curves(results: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for label, result in results.items():
        steps = [int(r["step"]) for r in result["rows"]]
        for ax, key in zip(axes, ("reward", "kl", "entropy"), strict=True):
            ax.plot(steps, [float(r[key]) for r in result["rows"]], label=label)
    titles = ("reward (keyword per 100 chars)", "KL to the start (nats / sequence)",
              "entropy (nats / token)")  # fmt: skip
    for ax, title in zip(axes, titles, strict=True):
        ax.set(title=title, xlabel="step")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> dict:
    from genlab import api

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpt-steps", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--kl", default="0.02,0.2")
    parser.add_argument("--keyword", default="love")
    parser.add_argument("--run", type=Path, default=Path("runs/bench-pg-lm"))
    parser.add_argument("--docs", type=Path, default=Path("docs/figures/rl"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="bench/results/pg_lm.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    source, _ = api.train_run(
        "gpt", DATA, args.run / "gpt", overrides={**GPT, "train.eval_every": "500"},
        steps=args.gpt_steps, progress=False,
    )  # fmt: skip
    gpt_minutes = (time.perf_counter() - start) / 60
    before = samples(source, 0)
    results = {}
    for kl in args.kl.split(","):
        run = args.run / f"pg-kl{kl}"
        t = time.perf_counter()
        overrides = {"keyword": args.keyword, "kl_coef": kl, "train.log_every": "5"}
        overrides |= {"train.eval_every": str(args.steps), "train.sample_every": str(args.steps)}
        api.train_run(
            "pg-lm", DATA, run, overrides=overrides, steps=args.steps, progress=False,
            init_from=source,
        )  # fmt: skip
        rows = rows_of(run)
        first, last = rows[0], rows[-1]
        results[f"kl_coef {kl}"] = {
            "minutes": round((time.perf_counter() - t) / 60, 2),
            "start": {k: round(float(first[k]), 3) for k in ("reward", "kl", "entropy")},
            "end": {k: round(float(last[k]), 3) for k in ("reward", "kl", "entropy")},
            "data_reward": round(sum(float(r["data_reward"]) for r in rows) / len(rows), 3),
            "after": samples(run, 0),
            "rows": rows,
        }
    figure = curves(results, args.docs / "pg-lm-curves.png")
    print(f"pg-lm toward {args.keyword!r} from a char GPT ({args.gpt_steps} steps, "
          f"{gpt_minutes:.1f} min)")  # fmt: skip
    for label, r in results.items():
        print(
            f"  {label}: reward {r['start']['reward']:.2f} -> {r['end']['reward']:.2f} (the "
            f"data's own {r['data_reward']:.2f}), KL {r['start']['kl']:.1f} -> "
            f"{r['end']['kl']:.1f} nats, entropy {r['start']['entropy']:.2f} -> "
            f"{r['end']['entropy']:.2f} ({r['minutes']} min)"
        )
    print("before:\n" + before[0])
    for label, r in results.items():
        print(f"after ({label}):\n" + r["after"][0])
    result = {
        "benchmark": "pg_lm",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "keyword": args.keyword,
        "gpt_steps": args.gpt_steps,
        "before": before,
        "runs": {k: {kk: vv for kk, vv in v.items() if kk != "rows"} for k, v in results.items()},
        "curves": {
            k: [(int(r["step"]), float(r["reward"]), float(r["kl"])) for r in v["rows"]]
            for k, v in results.items()
        },
        "files": [str(figure)],
        "machine": {**machine(), "load_average_at_end": os.getloadavg()[0]},
    }
    print(f"wrote {write_json(args.out, result)}")
    return result


if __name__ == "__main__":
    main()
