"""The adversarial training loop (a contract.Trainer): two players, two optimizers, one loop.

    for step in range(start, steps):                       # one step = one generator update
        tricks <- augmentation policy, instance-noise std (annealed to 0), label smoothing
        n_critic times: D update on a real batch and fresh fakes (model.discriminator_loss),
                        then model.after_discriminator_step() for a contract.CriticHook
                        (WGAN's clipping)
        G update (model.generator_loss, D frozen); EMA of the generator's weights
        every log_every: D and G losses, D(x) and D(G(z)) mean logits, both gradient norms
        every eval_every, with validation data: model.loss on it (EMA generator), logged as
                        val_* and passed to on_eval(step, metrics) (the tuner prunes through it)
        every sample_every: a grid from a fixed noise batch (EMA generator); checkpoint_every: save

What it reads of a model is the adversarial protocol (genlab.gan's docstring): the two players,
their losses, `discriminator_won` and the optional CriticHook; never a config field.

Stops with a clear message (exit 3 from the CLI) when a loss or gradient is not finite, or when
D has won (model.discriminator_won) for `collapse_steps` generator steps in a row (G learns
nothing more); the last good checkpoint is kept. Resume is exact, as in genlab.training.loop:
data order, every RNG, both optimizers, the EMA and the step counters are in the checkpoint, and
evaluation and sampling run under a forked RNG. Under torchrun the gradients of both players,
and the logged losses, are averaged across ranks.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from genlab.contract import CriticHook
from genlab.data.base import Dataset
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
    evaluate_loss,
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
    eval_every: int = 500  # model.loss on the validation data, when there is a val_split
    eval_batches: int = 0  # 0 = the whole validation split
    sample_every: int = 500
    sample_n: int = 64
    checkpoint_every: int = 500
    keep_last: int = 3
    train_split: str = "train"
    val_split: str = ""  # GANs are judged by sample metrics (genlab evaluate --metrics fid)

    def validate(self) -> None:
        for name in ("steps", "batch_size", "n_critic", "log_every", "eval_every", "sample_every"):
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
        if self.eval_batches < 0:
            raise ValueError(f"eval_batches must be >= 0, got {self.eval_batches}")
        check_policy(self.augment)


def load_data(
    data_name: str, options: dict[str, Any], cfg: TrainConfig
) -> tuple[Dataset, Dataset | None]:
    """(train, validation) datasets: `cfg.train_split`, and `cfg.val_split` when it is set
    (GANs default to none: sample metrics judge them)."""
    from genlab.data import load_dataset

    train_data = load_dataset(data_name, cfg.train_split, **options)
    val_data = load_dataset(data_name, cfg.val_split, **options) if cfg.val_split else None
    return train_data, val_data


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


def _broadcast_weights(model: nn.Module, info: DistInfo) -> None:
    """As DDP does: every rank starts from rank 0's weights and buffers."""
    if info.enabled:
        import torch.distributed as dist

        for tensor in model.state_dict().values():
            dist.broadcast(tensor, 0)


class _Game:
    """One adversarial run's state: the model, both optimizers, the generator's EMA, the data
    order and the counters a checkpoint keeps (G steps, D steps, steps D has won in a row)."""

    def __init__(
        self, model: nn.Module, data: Dataset, cfg: TrainConfig, run: RunDir, device, info
    ):
        self.model, self.data, self.cfg, self.run = model, data, cfg, run
        self.device, self.info = device, info
        self.sampler = EpochSampler(len(data), cfg.batch_size, cfg.seed, info.rank, info.world_size)
        self.opt_g = make_optimizer(model.generator.parameters(), cfg.lr_g, cfg)
        self.opt_d = make_optimizer(model.discriminator.parameters(), cfg.lr_d, cfg)
        self.ema = EMA(model.generator, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.step = self.d_steps = self.won = 0
        self.last_saved: int | None = None
        # what evaluation and samples use: the model with the EMA generator
        self.eval_model = copy.deepcopy(model) if self.ema is not None else model

    # --- checkpoints ----------------------------------------------------------------------------
    def restore(self) -> None:
        """Continue from the run's latest checkpoint: weights, optimizers, EMA, data, RNGs."""
        ckpt, state = restore_latest(self.run, self.model)
        with restoring(ckpt):
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            if self.ema is not None:
                saved = load_weights(ckpt / EMA_WEIGHTS)
                prefix = "generator."
                self.ema.load_state_dict(
                    {k[len(prefix) :]: v for k, v in saved.items() if k.startswith(prefix)}
                )
                self.ema.updates = int(state["ema_updates"])
            self.sampler.load_state_dict(state["sampler"])
            rngs = state["rng"]
            set_rng_state(rngs[self.info.rank] if self.info.enabled else rngs[0])
            self.step, self.d_steps = int(state["step"]), int(state["d_steps"])
            self.won = int(state["won"])
        self.last_saved = self.step

    def save(self) -> None:
        rngs = all_rng_states(self.info)
        if self.info.is_main:
            ema = self.ema
            state = {
                "step": self.step,
                "d_steps": self.d_steps,
                "won": self.won,
                "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(),
                "sampler": self.sampler.state_dict(),
                "ema_updates": ema.updates if ema is not None else 0,
                "rng": rngs,
            }
            ema_weights = full_model_ema(self.model, ema) if ema is not None else None
            self.run.save_checkpoint(
                self.step, self.model.state_dict(), ema_weights, state, keep_last=self.cfg.keep_last
            )
        self.last_saved = self.step
        barrier(self.info)

    # --- one generator step ---------------------------------------------------------------------
    def check(self, value: float, what: str) -> None:
        if not math.isfinite(value):
            raise_diverged(
                self.step + 1, f"non-finite {what}", value, self.run, self.last_saved, HINT
            )

    def play(self) -> dict[str, Any]:
        """n_critic D updates, then one G update: the terms of the last of each, to log (kept as
        tensors: reading them is a host sync, done only at log steps)."""
        model, cfg, tricks = self.model, self.cfg, tricks_at(self.step, self.cfg)
        for _ in range(cfg.n_critic):
            batch = to_device(self.data.batch(self.sampler.next()), self.device)
            with autocast_context(self.device, cfg.precision):
                d_out = model.discriminator_loss(batch, tricks, self.d_steps)
            self.check(float(d_out["loss"].detach()), "discriminator loss")
            d_norm = update(model.discriminator, d_out["loss"].float(), self.opt_d, self.info)
            self.check(d_norm, "discriminator gradient norm")
            self.d_steps += 1
            if isinstance(model, CriticHook):
                model.after_discriminator_step()
        model.discriminator.requires_grad_(False)  # the G step needs gradients through D only
        with autocast_context(self.device, cfg.precision):
            g_out = model.generator_loss(batch, tricks, self.step)
        self.check(float(g_out["loss"].detach()), "generator loss")
        g_norm = update(model.generator, g_out["loss"].float(), self.opt_g, self.info)
        model.discriminator.requires_grad_(True)
        self.check(g_norm, "generator gradient norm")
        if self.ema is not None:
            self.ema.update(model.generator)
        self.step += 1
        self._check_collapse(float(d_out["loss"].detach()))
        terms = {f"d_{k}" if k == "loss" else k: v.detach() for k, v in d_out.items()}
        terms |= {f"g_{k}" if k == "loss" else k: v.detach() for k, v in g_out.items()}
        return terms | {"d_grad_norm": d_norm, "g_grad_norm": g_norm}

    def _check_collapse(self, d_loss: float) -> None:
        self.won = self.won + 1 if self.model.discriminator_won(d_loss) else 0
        if self.cfg.collapse_steps and self.won >= self.cfg.collapse_steps:
            what = "discriminator loss ~0"
            raise_diverged(self.step, what, d_loss, self.run, self.last_saved, COLLAPSE)

    # --- what the EMA generator is judged by -----------------------------------------------------
    def _refresh_eval_model(self) -> None:
        """The current discriminator and the EMA generator into the evaluation copy."""
        if self.ema is not None:
            self.eval_model.load_state_dict(full_model_ema(self.model, self.ema))

    def evaluate(self, val_data: Dataset) -> dict[str, float]:
        """model.loss on the validation data (under a forked RNG), as val_* metrics."""
        self._refresh_eval_model()
        val = evaluate_loss(
            self.eval_model,
            val_data,
            batch_size=self.cfg.batch_size,
            device=self.device,
            max_batches=self.cfg.eval_batches,
            seed=self.cfg.seed,
            precision=self.cfg.precision,
        )
        val = mean_over_ranks(val, self.info, self.device)
        return {f"val_{k}": v for k, v in val.items()}

    def save_samples(self) -> None:
        self._refresh_eval_model()
        save_samples(
            self.eval_model,
            self.cfg.sample_n,
            self.run.samples_dir / f"step-{self.step:08d}.png",
            seed=self.cfg.seed,
            device=self.device,
        )


def _every(step: int, interval: int, cfg: TrainConfig) -> bool:
    return step % interval == 0 or step == cfg.steps


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
    on_eval: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """Train a GAN in place, writing checkpoints, metrics and sample grids into `run`.

    With validation data, `on_eval(step, metrics)` is called after each evaluation with its
    `val_*` metrics (a tuner reports them and may stop the run by raising; the checkpoint of
    that step is kept)."""
    device, info = training_device(cfg.device, dist_info)
    model.to(device).train()
    _broadcast_weights(model, info)
    game = _Game(model, train_data, cfg, run, device, info)
    if resume:
        game.restore()
    else:
        seed_everything(cfg.seed * 7919 + info.rank)
    log = (
        MetricsLog(run.metrics_path, resume_step=game.step if resume else None)
        if info.is_main
        else None
    )
    bar = Progress(cfg.steps, game.step, enabled=progress and info.is_main)
    tic, tic_step = time.perf_counter(), game.step
    row: dict[str, float] = {}
    val: dict[str, float] = {}
    try:
        while game.step < cfg.steps:
            terms = game.play()
            step = game.step
            bar.update(step)
            if _every(step, cfg.log_every, cfg):
                speed = (step - tic_step) / max(time.perf_counter() - tic, 1e-9)
                tic, tic_step = time.perf_counter(), step
                row = {k: float(v) for k, v in terms.items()}
                row = {**mean_over_ranks(row, info, device), "it_per_s": speed}
                if log is not None:
                    log.log(step, row)
                bar.update(step, f"D {row['d_loss']:.3f} G {row['g_loss']:.3f}", speed)
            evaluated = val_data is not None and _every(step, cfg.eval_every, cfg)
            if evaluated:
                val = game.evaluate(val_data)
                if log is not None:
                    log.log(step, val)
            if info.is_main and _every(step, cfg.sample_every, cfg):
                game.save_samples()
            if _every(step, cfg.checkpoint_every, cfg):
                game.save()
            if evaluated and on_eval is not None:
                on_eval(step, val)
    finally:
        bar.close()
        if log is not None:
            log.close()
    if not row and log is not None:  # nothing left to train: report the last logged values
        row = log.latest()
    # the losses of the last log step, averaged over the ranks (rank 0 prints them)
    return {"step": game.step, **{k: v for k, v in row.items() if k != "it_per_s"}, **val}


HINT = "Try lower learning rates (train.lr_g, train.lr_d), r1_gamma, or spectral_norm=true."
COLLAPSE = (
    "The discriminator wins outright, so the generator gets no signal: try "
    "train.augment=translation,cutout,color, train.label_smoothing=0.1, train.instance_noise=0.1 "
    "or a lower train.lr_d."
)
