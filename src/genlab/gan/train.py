"""The adversarial training loop: two players, two optimizers, one written-out loop.

    for step in range(start, steps):                       # one step = one generator update
        tricks <- augmentation policy, instance-noise std (annealed to 0), label smoothing
        n_critic times: D update on a real batch and fresh fakes (model.discriminator_loss),
                        then model.after_discriminator_step() if it has one (WGAN's clipping)
        G update (model.generator_loss, D frozen); EMA of the generator's weights
        every log_every: D and G losses, D(x) and D(G(z)) mean logits, both gradient norms
        every sample_every: a grid from a fixed noise batch (EMA generator); checkpoint_every: save

Stops with a clear message (exit 3 from the CLI) when a loss or gradient is not finite, or when
D's loss stays ~0 for `collapse_steps` generator steps (D won; G learns nothing more); the last
good checkpoint is kept. Resume is exact, as in genlab.training.loop: data order, every RNG,
both optimizers, the EMA and the step counters are in the checkpoint, and sampling runs under a
forked RNG. Under torchrun the gradients of both players, and the logged losses, are
averaged across ranks.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from genlab.data.base import Dataset
from genlab.gan import losses
from genlab.gan.augment import check_policy
from genlab.gan.losses import Tricks
from genlab.training.checkpoint import EMA_WEIGHTS, RunDir, load_weights
from genlab.training.distributed import DistInfo, barrier, mean_over_ranks
from genlab.training.ema import EMA
from genlab.training.logging import MetricsLog, Progress
from genlab.training.loop import (
    EpochSampler,
    all_rng_states,
    autocast_context,
    raise_diverged,
    restore_latest,
    restoring,
    save_samples,
    seed_everything,
    set_rng_state,
    to_device,
    training_device,
)


@dataclass
class TrainConfig:
    steps: int = 3000  # generator updates
    batch_size: int = 64  # per process, for both players
    lr_g: float = 2e-4
    lr_d: float = 2e-4  # two time-scale update rule (Heusel et al. 2017): lr_d != lr_g
    betas: tuple[float, float] = (0.5, 0.999)  # Adam's; DCGAN (0.5, 0.999), WGAN-GP (0, 0.9)
    optimizer: Literal["adam", "rmsprop"] = "adam"  # rmsprop for WGAN with weight clipping
    n_critic: int = 1  # discriminator updates per generator update
    ema_decay: float = 0.999  # EMA of the generator, used for samples and evaluation; 0 = off
    augment: str = ""  # DiffAugment policy: "translation,cutout,color" or a subset; "" = off
    instance_noise: float = 0.0  # std of noise on D's inputs at step 0, annealed linearly to 0
    label_smoothing: float = 0.0  # one-sided: real target 1 - s (minimax, non-saturating)
    collapse_steps: int = 500  # stop if D's loss stays < 1e-3 this many G steps; 0 = never
    precision: Literal["fp32", "bf16"] = "fp32"
    device: str = "auto"
    seed: int = 0
    log_every: int = 50
    sample_every: int = 500
    sample_n: int = 64
    checkpoint_every: int = 500
    keep_last: int = 3
    train_split: str = "train"
    val_split: str = ""  # GANs are judged by sample metrics (genlab evaluate --metrics fid)

    def validate(self) -> None:
        for name in ("steps", "batch_size", "n_critic", "log_every", "sample_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("checkpoint_every", "sample_n"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr_g", "lr_d"):
            if not 0 < getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be a positive number, got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 <= self.label_smoothing < 0.5 or self.instance_noise < 0:
            raise ValueError("label_smoothing must be in [0, 0.5) and instance_noise >= 0")
        if self.optimizer not in ("adam", "rmsprop") or self.collapse_steps < 0:
            raise ValueError("optimizer must be adam or rmsprop; collapse_steps >= 0")
        check_policy(self.augment)


def make_optimizer(params: Any, lr: float, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=tuple(cfg.betas))


def tricks_at(step: int, cfg: TrainConfig) -> Tricks:
    noise = cfg.instance_noise * max(0.0, 1.0 - step / cfg.steps)
    return Tricks(cfg.augment, noise, cfg.label_smoothing)


def update(player: nn.Module, loss: torch.Tensor, optimizer, info: DistInfo) -> float:
    """One optimizer step of one player; returns the gradient norm (averaged over ranks)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for p in player.parameters() if p.grad is not None]
    if info.enabled:
        import torch.distributed as dist

        for p in params:
            dist.all_reduce(p.grad)
            p.grad /= info.world_size
    norm = torch.nn.utils.clip_grad_norm_(params, math.inf) if params else torch.tensor(0.0)
    optimizer.step()
    return float(norm)


def full_model_ema(model: nn.Module, ema: EMA) -> dict[str, torch.Tensor]:
    """The model's weights with the generator's replaced by their EMA: loads strictly."""
    averaged = {f"generator.{k}": v for k, v in ema.state_dict().items()}
    return {**model.state_dict(), **averaged}


def train(
    model: nn.Module,
    train_data: Dataset,
    val_data: Dataset | None,
    cfg: TrainConfig,
    run: RunDir,
    *,
    resume: bool = False,
    progress: bool = True,
    dist_info: DistInfo | None = None,
) -> dict[str, float]:
    """Train a GAN in place, writing checkpoints, metrics and sample grids into `run`."""
    del val_data  # GANs have no validation loss worth keeping a "best" checkpoint for
    device, info = training_device(cfg.device, dist_info)
    model.to(device).train()
    if info.enabled:  # as DDP does: every rank starts from rank 0's weights and buffers
        import torch.distributed as dist

        for tensor in model.state_dict().values():
            dist.broadcast(tensor, 0)
    G, D = model.generator, model.discriminator
    sampler = EpochSampler(len(train_data), cfg.batch_size, cfg.seed, info.rank, info.world_size)
    opt_g, opt_d = (
        make_optimizer(G.parameters(), cfg.lr_g, cfg),
        make_optimizer(D.parameters(), cfg.lr_d, cfg),
    )
    ema = EMA(G, cfg.ema_decay) if cfg.ema_decay > 0 else None
    loss_kind = getattr(model.config, "loss", "")
    step = d_steps = won = 0
    if resume:
        ckpt, state = restore_latest(run, model)
        with restoring(ckpt):
            opt_g.load_state_dict(state["opt_g"])
            opt_d.load_state_dict(state["opt_d"])
            if ema is not None:
                saved = load_weights(ckpt / EMA_WEIGHTS)
                prefix = "generator."
                ema.load_state_dict(
                    {k[len(prefix) :]: v for k, v in saved.items() if k.startswith(prefix)}
                )
                ema.updates = int(state["ema_updates"])
            sampler.load_state_dict(state["sampler"])
            set_rng_state(state["rng"][info.rank] if info.enabled else state["rng"][0])
            step, d_steps, won = int(state["step"]), int(state["d_steps"]), int(state["won"])
    else:
        seed_everything(cfg.seed * 7919 + info.rank)
    eval_model = copy.deepcopy(model) if ema is not None else model
    log = (
        MetricsLog(run.metrics_path, resume_step=step if resume else None) if info.is_main else None
    )
    bar = Progress(cfg.steps, step, enabled=progress and info.is_main)
    after_d_step = getattr(model, "after_discriminator_step", None)
    last_saved = step if resume else None
    tic, tic_step = time.perf_counter(), step
    row: dict[str, float] = {}

    def checkpoint() -> None:
        nonlocal last_saved
        rngs = all_rng_states(info)
        if info.is_main:
            state = {
                "step": step,
                "d_steps": d_steps,
                "won": won,
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "sampler": sampler.state_dict(),
                "ema_updates": ema.updates if ema is not None else 0,
                "rng": rngs,
            }
            ema_weights = full_model_ema(model, ema) if ema is not None else None
            run.save_checkpoint(
                step, model.state_dict(), ema_weights, state, keep_last=cfg.keep_last
            )
        last_saved = step
        barrier(info)

    def check(value: float, what: str) -> None:
        if not math.isfinite(value):
            raise_diverged(step + 1, f"non-finite {what}", value, run, last_saved, HINT)

    try:
        while step < cfg.steps:
            tricks = tricks_at(step, cfg)
            for _ in range(cfg.n_critic):
                batch = to_device(train_data.batch(sampler.next()), device)
                with autocast_context(device, cfg.precision):
                    d_out = model.discriminator_loss(batch, tricks, d_steps)
                check(float(d_out["loss"].detach()), "discriminator loss")
                d_norm = update(D, d_out["loss"].float(), opt_d, info)
                check(d_norm, "discriminator gradient norm")
                d_steps += 1
                if after_d_step is not None:
                    after_d_step()
            D.requires_grad_(False)  # the G step needs gradients through D, not for D
            with autocast_context(device, cfg.precision):
                g_out = model.generator_loss(batch, tricks, step)
            check(float(g_out["loss"].detach()), "generator loss")
            g_norm = update(G, g_out["loss"].float(), opt_g, info)
            D.requires_grad_(True)
            check(g_norm, "generator gradient norm")
            if ema is not None:
                ema.update(G)
            step += 1
            bar.update(step)

            d_loss = float(d_out["loss"].detach())
            won = won + 1 if losses.collapsed(loss_kind, d_loss) else 0
            if cfg.collapse_steps and won >= cfg.collapse_steps:
                raise_diverged(step, "discriminator loss ~0", d_loss, run, last_saved, COLLAPSE)
            if step % cfg.log_every == 0 or step == cfg.steps:
                speed = (step - tic_step) / max(time.perf_counter() - tic, 1e-9)
                tic, tic_step = time.perf_counter(), step
                row = {f"d_{k}" if k == "loss" else k: float(v.detach()) for k, v in d_out.items()}
                row |= {f"g_{k}" if k == "loss" else k: float(v.detach()) for k, v in g_out.items()}
                row |= {"d_grad_norm": d_norm, "g_grad_norm": g_norm}
                row = {**mean_over_ranks(row, info, device), "it_per_s": speed}
                if log is not None:
                    log.log(step, row)
                bar.update(step, f"D {row['d_loss']:.3f} G {row['g_loss']:.3f}", speed)
            if info.is_main and (step % cfg.sample_every == 0 or step == cfg.steps):
                if ema is not None:
                    ema.copy_to(eval_model.generator)
                save_samples(
                    eval_model,
                    cfg.sample_n,
                    run.samples_dir / f"step-{step:08d}.png",
                    seed=cfg.seed,
                    device=device,
                )
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                checkpoint()
    finally:
        bar.close()
        if log is not None:
            log.close()
    if not row and log is not None:  # nothing left to train: report the last logged values
        row = log.latest()
    # the losses of the last log step, averaged over the ranks (rank 0 prints them)
    return {"step": step, **{k: v for k, v in row.items() if k != "it_per_s"}}


HINT = "Try lower learning rates (train.lr_g, train.lr_d), r1_gamma, or spectral_norm=true."
COLLAPSE = (
    "The discriminator wins outright, so the generator gets no signal: try "
    "train.augment=translation,cutout,color, train.label_smoothing=0.1, train.instance_noise=0.1 "
    "or a lower train.lr_d."
)
