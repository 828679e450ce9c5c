"""Run by tests/training/test_ddp.py under torchrun: train the toy model with DDP on 2 CPU
processes (gloo) and save each rank's final weights for comparison."""

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).parent))
from toy import Toy, ToyConfig, toy_data

from genlab.training.checkpoint import RunDir
from genlab.training.distributed import init_distributed, mean_over_ranks, shutdown
from genlab.training.loop import TrainConfig, train

out = Path(sys.argv[1])
torch.set_num_threads(1)
info = init_distributed("cpu")
torch.manual_seed(0)
model = Toy(ToyConfig())
if info.rank == 1:  # a different start on rank 1: DDP must broadcast rank 0's weights
    torch.nn.init.normal_(model.net[0].weight)
run = RunDir(out / "run")
if info.is_main:
    run.create({"model": "toy", "model_config": {}})
cfg = TrainConfig(
    steps=12,
    batch_size=8,
    lr=1e-2,
    warmup_steps=2,
    log_every=4,
    eval_every=6,
    sample_every=6,
    checkpoint_every=6,
)
train(model, toy_data(64), toy_data(16, seed=1), cfg, run, progress=False, dist_info=info)
save_file(
    {k: v.contiguous() for k, v in model.state_dict().items()},
    str(out / f"rank{info.rank}.safetensors"),
)
# what the loops log and report under DDP: values averaged over the ranks (here 0 and 1)
mean = mean_over_ranks({"rank": float(info.rank)}, info, torch.device("cpu"))["rank"]
save_file({"mean": torch.tensor(mean)}, str(out / f"mean{info.rank}.safetensors"))
shutdown(info)
