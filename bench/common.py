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
