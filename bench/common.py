"""Shared by the benchmark scripts: machine description and JSON output."""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def median_step_seconds(model: torch.nn.Module, batches: list, lr: float = 1e-3) -> float:
    """The median wall time of an AdamW training step of `model` over `batches` (4 or more),
    the first step left out: it warms up."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    times = []
    for batch in batches:
        start = time.perf_counter()
        optimizer.zero_grad()
        model.loss(batch)["loss"].backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def train_and_load(
    model: torch.nn.Module,
    name: str,
    train_data: Any,
    train_cfg: Any,
    *,
    data: dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
) -> float:
    """Train `model` through the shared loop in a throw-away run directory (or `run_dir`, kept),
    load its final weights (the EMA copy when there is one) and return the loop's wall time in
    seconds."""
    from genlab.config import to_dict
    from genlab.training.checkpoint import EMA_WEIGHTS, WEIGHTS, RunDir, load_weights
    from genlab.training.loop import train

    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(run_dir or Path(tmp) / "run")
        run.create(
            {
                "model": name,
                "model_config": to_dict(model.config),
                "data": data or {},
                "train": to_dict(train_cfg),
            }
        )
        start = time.perf_counter()
        train(model, train_data, None, train_cfg, run, progress=False)
        seconds = time.perf_counter() - start
        folder = run.weights_folder("last")
        ema = folder / EMA_WEIGHTS
        model.load_state_dict(load_weights(ema if ema.is_file() else folder / WEIGHTS), strict=True)
    model.eval()
    return seconds


class OutOfTime(Exception):
    """Raised by `train_to_budget`'s evaluation hook when the training budget is spent."""


def train_to_budget(
    name: str,
    data: str,
    run: str | Path,
    overrides: dict[str, str],
    *,
    minutes: float,
    step_s: float,
    eval_every: int,
) -> dict[str, Any]:
    """Train `name` on `data` into `run` for about `minutes` of wall time through
    genlab.api.train_run: the step count is planned from `step_s`, a measured training step
    (so the learning-rate schedule ends on time), and an evaluation hook stops the run at the
    budget if the machine is slower than planned (checkpoint every `eval_every` steps, so the
    stop keeps that step's weights)."""
    from genlab import api

    budget = 60 * minutes
    # evaluation passes, checkpoints and the data's loading take the rest of the budget
    steps = max(eval_every, int(0.85 * budget / step_s))
    print(f"{name}: {step_s:.2f} s/step measured, planning {steps} steps", flush=True)
    start = time.perf_counter()

    def stop_at_budget(step: int, metrics: dict) -> None:
        if time.perf_counter() - start > budget:
            raise OutOfTime(step)

    stopped = None
    try:
        api.train_run(
            name, data, run, overrides=overrides, steps=steps, progress=False,
            on_eval=stop_at_budget,
        )  # fmt: skip
    except OutOfTime as e:
        stopped = e.args[0]
    return {
        "train_seconds": round(time.perf_counter() - start, 1),
        "planned_steps": steps,
        "stopped_at_step": stopped,
        "seconds_per_step": round(step_s, 3),
    }
