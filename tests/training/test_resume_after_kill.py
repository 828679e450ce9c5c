"""A run killed with SIGKILL mid-training and resumed ends bit-identical to an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from genlab.training.checkpoint import load_weights

ARGS = [
    "train",
    "vae",
    "--data",
    "digits",
    "--steps",
    "600",
    "--seed",
    "7",
    "-q",
    "-o",
    "channels=8",
    "-o",
    "blocks_high=0",
    "-o",
    "blocks_low=1",
    "-o",
    "latent_dim=4",
    "-o",
    "dropout=0.1",
    "-o",
    "iwae_k=4",
    "-o",
    "train.batch_size=32",
    "-o",
    "train.checkpoint_every=25",
    "-o",
    "train.eval_every=50",
    "-o",
    "train.sample_every=300",
    "-o",
    "train.ema_decay=0.99",
]


def genlab(*args: str, **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "genlab.cli", *args]
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        **kw,
    )


def finish(proc: subprocess.Popen) -> None:
    _out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]


def test_sigkill_then_resume_is_bit_identical(tmp_path: Path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    finish(genlab(*ARGS, "--out", str(reference)))

    proc = genlab(*ARGS, "--out", str(killed))
    marker = killed / "checkpoints" / "step-00000100"
    deadline = time.monotonic() + 300
    while not marker.is_dir() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "checkpoints" / "step-00000600").exists(), "the run ended before the kill"

    finish(genlab("train", "vae", "--out", str(killed), "--resume", "-q"))
    for name in ("model.safetensors", "ema.safetensors"):
        a, b = load_weights(reference / name), load_weights(killed / name)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}:{k} differs after resume"
