"""The adversarial loop under torchrun: 2 CPU ranks end with identical weights."""

import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parents[1] / "training"))
from test_ddp import torchrun

WORKER = Path(__file__).with_name("gan_ddp_worker.py")


def test_two_cpu_ranks_hold_identical_gan_weights(tmp_path):
    torchrun(str(WORKER), str(tmp_path))
    rank0 = load_file(str(tmp_path / "rank0.safetensors"))
    rank1 = load_file(str(tmp_path / "rank1.safetensors"))
    for k in rank0:  # parameters (batch-norm running statistics are per rank, as in DDP)
        assert torch.equal(rank0[k], rank1[k]), k
    first = load_file(str(tmp_path / "run" / "checkpoints" / "step-00000003" / "model.safetensors"))
    assert any(not torch.equal(first[k], rank0[k]) for k in rank0)
    state = torch.load(tmp_path / "run" / "trainer_state.pt", weights_only=True)
    assert len(state["rng"]) == 2 and state["d_steps"] == 12
