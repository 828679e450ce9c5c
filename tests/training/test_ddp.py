import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("ddp_worker.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str) -> str:
    """Run `args` under torchrun with 2 CPU processes (one thread each); assert success and
    return what they printed."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_two_cpu_ranks_hold_identical_weights(tmp_path):
    torchrun(str(WORKER), str(tmp_path))
    rank0 = load_file(str(tmp_path / "rank0.safetensors"))
    rank1 = load_file(str(tmp_path / "rank1.safetensors"))
    for k in rank0:
        assert torch.equal(rank0[k], rank1[k]), k
    # training moved the weights away from rank 0's initialisation, and only rank 0 wrote files
    first = load_file(str(tmp_path / "run" / "checkpoints" / "step-00000006" / "model.safetensors"))
    assert any(not torch.equal(first[k], rank0[k]) for k in rank0)
    assert (tmp_path / "run" / "metrics.csv").is_file()
    for rank in (0, 1):
        assert float(load_file(str(tmp_path / f"mean{rank}.safetensors"))["mean"]) == 0.5


def test_torchrun_of_the_cli_trains_one_run(tmp_path):
    out = tmp_path / "run"
    tiny = [
        "channels=4",
        "blocks_high=0",
        "blocks_low=1",
        "latent_dim=2",
        "train.batch_size=16",
        "train.checkpoint_every=6",
    ]
    printed = torchrun(
        "-m",
        "genlab.cli",
        "train",
        "vae",
        "--data",
        "digits",
        "--steps",
        "12",
        "-q",
        "--out",
        str(out),
        *[a for o in tiny for a in ("-o", o)],
    )
    assert sorted(p.name for p in (out / "checkpoints").iterdir() if p.name.startswith("step")) == [
        "step-00000006",
        "step-00000012",
    ]
    state = torch.load(out / "trainer_state.pt", weights_only=True)
    assert len(state["rng"]) == 2, "one RNG state per rank"
    # one report, rank 0's; its loss is the one logged at the last step: the mean over ranks
    assert printed.count("done:") == 1, printed
    with open(out / "metrics.csv", newline="") as f:
        last = [row["loss"] for row in csv.DictReader(f) if row["loss"]][-1]
    assert f"train_loss {float(last):.4f}" in printed, printed
