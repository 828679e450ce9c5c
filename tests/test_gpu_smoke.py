"""bench/gpu_smoke.py runs end to end on CPU with tiny configs, and every model's `gpu` preset
(which that benchmark times on a GPU) is valid for its Config and its loop's TrainConfig."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genlab.config import from_dict
from genlab.contract import train_defaults, trainer_module
from genlab.data import load_dataset
from genlab.registry import MODELS, config_from, model_class
from test_contract import DATA, TINY

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_has_a_valid_gpu_preset(name):
    cls = model_class(name)
    preset = getattr(cls, "presets", {}).get("gpu")
    assert preset is not None, f"{name} has no gpu preset (genlab train {name} --preset gpu)"
    assert set(preset) <= {"model_config", "train", "data"}
    config = config_from(name, preset.get("model_config", {}))
    with torch.device("meta"):  # the architecture builds, without allocating its weights
        cls(config)
    loop = trainer_module(cls)
    settings = {**train_defaults(cls, config), **preset.get("train", {})}
    from_dict(loop.TrainConfig, settings)  # known keys, right types, validate()
    options = preset.get("data", {}).get("options", {})
    if options:  # dataset options must be ones the model's data takes
        load_dataset(DATA[name], "train", **options)


def test_the_benchmark_runs_every_model_on_cpu_with_tiny_configs(tmp_path):
    """The script as a GPU machine runs it, on the CPU: every registered model, fp32 and bf16,
    one warm-up and two timed steps of the tiny configs of tests/test_contract.py."""
    tiny = {
        name: {k: v for k, v in configs[0].items() if not k.startswith("__")}
        for name, configs in TINY.items()
    }
    configs, out = tmp_path / "tiny.json", tmp_path / "smoke.json"
    configs.write_text(json.dumps(tiny))
    command = [sys.executable, str(REPO / "bench" / "gpu_smoke.py"), "--device", "cpu"]
    command += ["--model-configs", str(configs), "--image-shape", "1,8,8", "--block-size", "16"]
    command += ["--audio-length", "64"]
    command += ["--batch-size", "4", "--steps", "2", "--warmup", "1", "--compile", "off"]
    command += ["--threads", "1", "--peak-tflops", "1", "--out", str(out)]
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text())["results"]
    sys.path.insert(0, str(REPO / "bench"))
    import gpu_smoke

    timed = [name for name in MODELS if gpu_smoke.timed(name)]
    assert {"gpt", "dcgan", "wavenet", "musicvae"} <= set(timed)
    assert not {"dqn", "ppo", "pg-lm"} & set(timed)
    assert {(r["model"], r["precision"]) for r in rows} == {
        (name, precision) for name in timed for precision in ("fp32", "bf16")
    }
    for row in rows:
        assert "error" not in row, row
        assert row["steps_per_s"] > 0 and row["samples_per_s"] == pytest.approx(
            4 * row["steps_per_s"]
        )
        assert math.isfinite(row["last_loss"]), row
        assert row["peak_mib"] is None  # CUDA-only
        assert ("mfu" in row) == (row["model"] == "gpt")
    assert "gpt" in done.stdout and "steps/s" in done.stdout  # the table is printed


def test_gpt_model_flops_follow_the_6n_plus_attention_count():
    """MFU's numerator: 6 N + 12 L H Q T FLOPs per token, N without the position embedding."""
    sys.path.insert(0, str(REPO / "bench"))
    import gpu_smoke

    args = gpu_smoke.parse_args(["--device", "cpu", "--block-size", "16", "--batch-size", "2"])
    args.model_configs = {"gpt": {"n_layer": 2, "n_head": 2, "n_embd": 8}}
    setup = gpu_smoke.setup_for("gpt", args)
    model = model_class("gpt")(setup.model_config)
    n = sum(p.numel() for p in model.parameters()) - model.wpe.weight.numel()
    per_token = 6 * n + 12 * 2 * 2 * 4 * 16
    assert gpu_smoke.gpt_flops_per_step(model, setup) == per_token * 16 * 2
    assert dataclasses.asdict(setup.model_config)["block_size"] == 16
