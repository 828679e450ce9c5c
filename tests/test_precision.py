"""bf16 autocast trains every registered model: finite losses, agreement with fp32, fp32 state.

Each tiny config of tests/test_contract.py trains a few steps through the loop its model names
(`trainer`: the likelihood loop or the adversarial loop) twice from the same seed, with
train.precision fp32 and bf16. bf16 is CPU autocast through the loops' own `autocast_context`,
the code path a GPU run takes (CUDA autocast runs more ops in fp32 than CPU autocast does, so
CPU is the stricter test of the models' precision handling).

The tolerance: bf16 keeps 8 significant bits, so one rounding is a relative error of at most
2^-9 (0.2%). A tiny network rounds its inputs, weights and outputs at each of its 2-4 layers,
about 12 roundings on any path to the loss: at most ~12 * 2^-9 = 2.3% where nothing cancels.
RTOL = 5e-2 is twice that. (Measured here: at most 0.1% for the likelihood losses and 0.5% for
the adversarial ones, against their tolerances' base.) Where a logged value is a difference of nearly equal terms (a Wasserstein
loss at initialisation, a mean of logits of both signs), its rounding error scales with the
terms, not with the difference: adversarial values get RTOL times the logits' magnitude
(max |mean D(x)|, |mean D(G(z))|) on top. Adversarial runs are compared at the first step only:
Adam's first update is lr * sign(gradient), so a gradient component near zero whose sign bf16
flips moves a weight by 2 lr, and the game amplifies that in later steps; a likelihood
objective is smooth, so all its steps are compared.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import typing

import pytest
import torch

from genlab.contract import (
    AdversarialModel,
    SurrogateObjective,
    train_defaults,
    trainer_module,
)
from genlab.registry import model_class
from genlab.training.checkpoint import EMA_WEIGHTS, WEIGHTS, RunDir, load_weights
from test_contract import CASES, build

RTOL = 5e-2
STEPS = 3


def train_few_steps(name: str, i: int, precision: str, folder) -> tuple[object, list[dict]]:
    """The model after STEPS steps of its real loop, and the metrics.csv rows (one per step)."""
    model, data = build(name, i, seed=0)
    loop = trainer_module(type(model))
    fields = {f.name for f in dataclasses.fields(loop.TrainConfig)}
    settings = {
        **train_defaults(type(model), model.config),  # the model's own optimizer settings
        "steps": STEPS,
        "batch_size": 16,
        "log_every": 1,
        "checkpoint_every": STEPS,
        "sample_every": STEPS,
        "sample_n": 2,
        "ema_decay": 0.9,  # the EMA copy is state too: it must stay fp32
        "n_critic": 1,  # the first logged D values then come from the initial weights
        "precision": precision,
        "device": "cpu",
        "seed": 0,
        "eval_every": STEPS,
        "val_split": "",
        "warmup_steps": 0,
    }
    cfg = loop.TrainConfig(**{k: v for k, v in settings.items() if k in fields})
    run = RunDir(folder / precision)
    run.create({"model": name, "model_config": {}})
    loop.train(model, data, None, cfg, run, progress=False)
    with open(run.metrics_path, newline="", encoding="utf-8") as f:
        rows = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
    return model, rows


def compared(model, fp32_rows: list[dict], bf16_rows: list[dict]):
    """(step, key, fp32 value, bf16 value, tolerance) for every value the test compares. None
    for a policy-gradient surrogate (pg-lm): its loss is a sum of advantages that cancel to
    near 0, and its samples differ as soon as bf16 rounds a logit across a sampling boundary."""
    if isinstance(model, SurrogateObjective):
        return
    adversarial = isinstance(model, AdversarialModel)
    keys = ("d_loss", "g_loss", "d_real", "d_fake") if adversarial else ("loss",)
    for a, b in zip(fp32_rows[:1] if adversarial else fp32_rows, bf16_rows, strict=False):
        scale = max(abs(a["d_real"]), abs(a["d_fake"])) if adversarial else 0.0
        for key in keys:
            yield int(a["step"]), key, a[key], b[key], RTOL * (abs(a[key]) + scale)


@pytest.mark.parametrize("name, i", CASES)
def test_bf16_training_is_finite_close_to_fp32_and_keeps_fp32_state(name, i, tmp_path):
    loop = trainer_module(model_class(name))
    if "bf16" not in typing.get_args(typing.get_type_hints(loop.TrainConfig)["precision"]):
        pytest.skip(f"{name}'s loop trains in fp32 only")
    _, fp32_rows = train_few_steps(name, i, "fp32", tmp_path)
    model, bf16_rows = train_few_steps(name, i, "bf16", tmp_path)

    assert len(bf16_rows) == len(fp32_rows) == STEPS
    for row in bf16_rows:
        bad = [k for k, v in row.items() if not math.isfinite(v)]
        assert not bad, f"non-finite {bad} at step {row['step']} in bf16"
    for step, key, a, b, tol in compared(model, fp32_rows, bf16_rows):
        assert abs(a - b) <= tol, f"step {step} {key}: fp32 {a} vs bf16 {b} (tolerance {tol})"
    timing = {"it_per_s", "lr"}
    differs = [
        k
        for a, b in zip(fp32_rows, bf16_rows, strict=True)
        for k in a.keys() - timing
        if a[k] != b[k]
    ]
    assert differs, "bf16 and fp32 logged the same numbers: autocast did not run"

    # parameters, buffers (running statistics, w_avg, ActNorm flags) and the saved weights and
    # EMA weights stay fp32: autocast changes how ops compute, never what the model stores
    state = dict(model.named_parameters()) | dict(model.named_buffers())
    run = RunDir(tmp_path / "bf16")
    state |= {f"saved {k}": v for k, v in load_weights(run.path / WEIGHTS).items()}
    state |= {f"ema {k}": v for k, v in load_weights(run.path / EMA_WEIGHTS).items()}
    low = {
        k: v.dtype for k, v in state.items() if v.is_floating_point() and v.dtype != torch.float32
    }
    assert not low, f"tensors no longer fp32 after bf16 training: {low}"
