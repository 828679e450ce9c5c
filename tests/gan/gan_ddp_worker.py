"""Run by tests/gan/test_gan_ddp.py under torchrun: train a tiny DCGAN on 2 CPU processes (gloo)
and save each rank's final weights for comparison."""

import dataclasses
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from genlab.contract import config_for_data
from genlab.data import load_dataset
from genlab.gan.dcgan import DCGAN
from genlab.gan.train import TrainConfig, train
from genlab.training.checkpoint import RunDir
from genlab.training.distributed import init_distributed, shutdown

out = Path(sys.argv[1])
torch.set_num_threads(1)
info = init_distributed("cpu")
data = load_dataset("digits", "train")
config = dataclasses.replace(
    config_for_data(DCGAN.Config(), data.spec), z_dim=4, g_width=4, d_width=4
)
torch.manual_seed(info.rank)  # different starts: the loop must broadcast rank 0's weights
model = DCGAN(config)
run = RunDir(out / "run")
if info.is_main:
    run.create({"model": "dcgan", "model_config": {}})
cfg = TrainConfig(steps=6, batch_size=8, n_critic=2, log_every=2, checkpoint_every=3)
train(model, data, None, cfg, run, progress=False, dist_info=info)
save_file(
    {k: v.contiguous() for k, v in model.state_dict().items() if "running" not in k},
    str(out / f"rank{info.rank}.safetensors"),
)
shutdown(info)
