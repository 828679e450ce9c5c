"""The likelihood-style training loop (VAE, flows, autoregressive image models, language models).

It needs only the model contract: `model.loss(batch)["loss"]` to minimise and
`model.sample(n, generator=...)` for its periodic samples. It is a `contract.Trainer` module:
`TrainConfig`, `load_data` (the named dataset's train and val splits) and `train`. One loop:

    for step in range(start, steps):
        for each of grad_accum micro-batches: loss = model.loss(batch) / grad_accum; backward
        clip the global gradient norm; AdamW step; lr <- warmup + cosine(step); EMA update
        every log_every: a metrics.csv row (means over the ranks under torchrun); every
        eval_every: validation loss (best kept), reported to `on_eval`;
        every sample_every: samples from a fixed noise batch, written by the writer of the
        data's kind (genlab.writers: an image grid, a scatter plot, decoded text);
        every checkpoint_every: save

Resume is exact: data order (epoch, position), every RNG state and the optimizer are part of
the checkpoint, evaluation and sampling run under a forked RNG so they never perturb training,
and a resumed run ends bit-identical to an uninterrupted one with the same seed.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from genlab.data.base import Dataset
from genlab.errors import GenlabError, TrainingDiverged
from genlab.training.checkpoint import EMA_WEIGHTS, STATE, WEIGHTS, RunDir, load_state, load_weights
from genlab.training.diagnose import first_nonfinite_module, nonfinite_gradients
from genlab.training.distributed import DistInfo, barrier, init_distributed, mean_over_ranks
from genlab.training.ema import EMA
from genlab.training.logging import MetricsLog, Progress
from genlab.training.schedules import warmup_cosine


@dataclass
class TrainConfig:
    steps: int = 2000  # optimizer steps
    batch_size: int = 64  # examples per micro-batch and per process
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 1e-3  # peak learning rate (after warm-up)
    weight_decay: float = 0.0  # AdamW decoupled decay, on weight matrices/kernels only
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100  # linear warm-up, then cosine decay
    min_lr_ratio: float = 0.1  # the cosine floor as a fraction of lr
    grad_clip: float = 1.0  # max global gradient norm; 0 = off (the norm is still logged)
    ema_decay: float = 0.0  # 0 = no EMA; e.g. 0.999 keeps an averaged copy for evaluation
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 = autocast where the device supports it
    compile: bool = False  # torch.compile the loss; falls back to eager with a warning
    device: str = "auto"  # auto = cuda, then mps, then cpu
    seed: int = 0
    log_every: int = 50
    eval_every: int = 500
    eval_batches: int = 0  # 0 = the whole validation split
    sample_every: int = 1000
    sample_n: int = 64
    checkpoint_every: int = 500
    keep_last: int = 3  # step checkpoints kept (the best is kept besides)
    train_split: str = "train"
    val_split: str = "val"  # "" = no validation

    def validate(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "log_every", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("sample_every", "checkpoint_every", "sample_n"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or not math.isfinite(self.lr):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.grad_clip < 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ValueError("grad_clip, weight_decay and warmup_steps must be >= 0")


# --- devices and precision ------------------------------------------------------------------
def select_device(name: str = "auto") -> torch.device:
    """The torch device for `name` (auto, cpu, cuda, cuda:N, mps); GenlabError for one that is
    unknown or not on this machine (checked here, not left to fail inside model.to)."""
    if name != "auto":
        try:
            device = torch.device(name)
        except (RuntimeError, TypeError):
            device = torch.device("meta")  # refused just below
        if device.type not in ("cpu", "cuda", "mps"):
            raise GenlabError(f"unknown device {name!r}: expected auto, cpu, cuda[:N] or mps")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise GenlabError("device cuda was asked for but CUDA is not available here")
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise GenlabError(f"no device {name}: {torch.cuda.device_count()} CUDA device(s) here")
        if device.type == "mps" and not _mps_available():
            raise GenlabError("device mps was asked for but MPS is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def autocast_context(device: torch.device, precision: str):
    """bf16 autocast where supported; otherwise fp32 with a warning (never a crash)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    supported = torch.amp.is_autocast_available(device.type) and (
        device.type != "cuda" or torch.cuda.is_bf16_supported()
    )
    if not supported:
        warnings.warn(f"bf16 autocast is not supported on {device}; training in fp32", stacklevel=2)
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, tuple | list):
        return type(batch)(to_device(b, device) for b in batch)
    return batch


# --- data order -----------------------------------------------------------------------------
class EpochSampler:
    """Batches of indices from a seeded permutation per epoch; state = (epoch, position).

    Rank r of a world of size W reads every W-th index of the permutation, so the ranks see
    disjoint examples. The last incomplete batch of an epoch is dropped.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        per_rank = n // world_size
        if per_rank < 1:
            raise GenlabError(
                f"the training split has {n} examples: too few for {world_size} ranks"
            )
        if batch_size > per_rank:
            warnings.warn(
                f"batch_size {batch_size} is larger than the {per_rank} training examples per "
                f"process; using batches of {per_rank}",
                stacklevel=2,
            )
            batch_size = per_rank
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.batches_per_epoch = per_rank // batch_size
        self.epoch, self.position = 0, 0
        self._perm: tuple[int, Tensor] | None = None

    def _permutation(self) -> Tensor:
        if self._perm is None or self._perm[0] != self.epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._perm = (
                self.epoch,
                torch.randperm(self.n, generator=g)[self.rank :: self.world_size],
            )
        return self._perm[1]

    def next(self) -> Tensor:
        if self.position >= self.batches_per_epoch:
            self.epoch, self.position = self.epoch + 1, 0
        start = self.position * self.batch_size
        self.position += 1
        return self._permutation()[start : start + self.batch_size]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


# --- RNG state (all plain types and tensors, so weights_only loading works) -------------------
def rng_state() -> dict[str, Any]:
    _kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def all_rng_states(info: DistInfo) -> list[dict[str, Any]]:
    """Every rank's RNG state (gathered under DDP; a collective call: all ranks must make it)."""
    if not info.enabled:
        return [rng_state()]
    import torch.distributed as dist

    rngs: list[Any] = [None] * info.world_size
    dist.all_gather_object(rngs, rng_state())
    return rngs


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def forked_rng(seed: int, device: torch.device):
    """Run a block with its own seeded RNG, leaving the training RNG untouched."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


# --- pieces of the loop ---------------------------------------------------------------------
class _LossModule(nn.Module):
    """forward(batch) = model.loss(batch), so DDP and torch.compile see a plain forward."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> dict[str, Tensor]:
        return self.model.loss(batch)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; biases and norm gains (ndim < 2) get no weight decay."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


@torch.no_grad()
def evaluate_loss(
    model: nn.Module,
    data: Dataset,
    *,
    batch_size: int,
    device: torch.device,
    max_batches: int = 0,
    seed: int = 0,
    precision: str = "fp32",
) -> dict[str, float]:
    """Mean of every entry of model.loss over the split (in order), under a seeded forked RNG."""
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    count = 0
    with forked_rng(seed, device), autocast_context(device, precision):
        for b, start in enumerate(range(0, len(data), batch_size)):
            if max_batches and b >= max_batches:
                break
            indices = torch.arange(start, min(start + batch_size, len(data)))
            out = model.loss(to_device(data.batch(indices), device))
            for k, v in out.items():
                totals[k] = totals.get(k, 0.0) + float(v.float().mean()) * len(indices)
            count += len(indices)
    model.train(was_training)
    return {k: v / max(count, 1) for k, v in totals.items()}


def save_samples(
    model: nn.Module,
    n: int,
    path: str | Path,
    *,
    seed: int,
    device: torch.device,
    kind: str | None = None,
) -> Path:
    """Sample from a fixed noise batch (same seed every time) and write the samples with the
    writer of their data kind (genlab.writers) to `path` with that writer's suffix
    (step-00000010.png; .txt for text). `kind`: the samples' DataSpec kind, by default
    `contract.sample_kind(model)`. Returns the file written."""
    from genlab.contract import sample_kind
    from genlab.writers import write_samples, writer_for

    kind = sample_kind(model) if kind is None else kind
    out = Path(path).with_suffix(writer_for(kind).suffix)
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad(), forked_rng(seed, device):
        samples = model.sample(n, generator=generator)
    model.train(was_training)
    return write_samples(samples, out, kind=kind, model=model)


def _compiled(loss_module: nn.Module, enabled: bool):
    if not enabled:
        return loss_module
    state = {"fn": torch.compile(loss_module), "fallback": False}

    def call(batch):
        if state["fallback"]:
            return loss_module(batch)
        try:
            return state["fn"](batch)
        except Exception as e:  # compile needs a C++ toolchain/triton; eager always works
            warnings.warn(
                f"torch.compile failed ({type(e).__name__}); training eagerly", stacklevel=2
            )
            state["fallback"] = True
            return loss_module(batch)

    return call


def training_device(name: str, dist_info: DistInfo | None) -> tuple[torch.device, DistInfo]:
    """The device to train on and this process's place in the torchrun group (if any)."""
    device = select_device(name)
    info = dist_info or init_distributed(device.type)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    return device, info


def restore_latest(run: RunDir, model: nn.Module) -> tuple[Any, dict[str, Any]]:
    """Load the newest complete checkpoint's weights into `model`; returns (folder, state).

    Weights that do not fit the model (config.json edited since) and a trainer state that is
    not a mapping are GenlabErrors; a loop restores the rest of the state under `restoring`.
    Both happen before the loop writes anything, so a run that cannot resume is left as it was.
    """
    ckpt = run.latest_checkpoint()
    if ckpt is None:
        raise GenlabError(f"nothing to resume in {run.path}: no complete checkpoint yet")
    state = load_state(ckpt / STATE)
    if not isinstance(state, dict):
        raise GenlabError(f"malformed trainer state {ckpt / STATE}: not a mapping")
    try:
        model.load_state_dict(load_weights(ckpt / WEIGHTS), strict=True)
    except RuntimeError as e:  # missing/unexpected keys or size mismatches, listed by torch
        raise GenlabError(
            f"the weights in {ckpt} do not fit the model of {run.config_path}: {_load_error(e)}"
        ) from None
    return ckpt, state


@contextlib.contextmanager
def restoring(ckpt: Path):
    """Turn a trainer state that loads but does not fit the loop (a missing key, a wrong type
    or size, optimizer groups that differ) into a one-line GenlabError naming the checkpoint."""
    try:
        yield
    except GenlabError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        raise GenlabError(
            f"malformed trainer state in {ckpt}: {type(e).__name__}: {_first_line(e)}"
        ) from None


def _load_error(error: RuntimeError) -> str:
    """The first problem load_state_dict lists (its first line is only a title), on one line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Error(s) in loading state_dict"):
        more = f" (and {len(lines) - 2} more)" if len(lines) > 2 else ""
        return lines[1] + more
    return _first_line(error)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"


# --- the loop -------------------------------------------------------------------------------
def load_data(
    data_name: str, options: dict[str, Any], cfg: TrainConfig
) -> tuple[Dataset, Dataset | None]:
    """What this loop trains on (contract.Trainer): the `cfg.train_split` of the named dataset
    and, unless `cfg.val_split` is empty, its validation split, both read with `options`."""
    from genlab.data import load_dataset

    train_data = load_dataset(data_name, cfg.train_split, **options)
    val_data = load_dataset(data_name, cfg.val_split, **options) if cfg.val_split else None
    return train_data, val_data


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
    """Train `model` in place, writing checkpoints, metrics and samples into `run`.

    `on_eval(step, metrics)` is called after each validation pass with its `val_*` metrics (a
    tuner reports them and may stop the run by raising; the checkpoint of that step is kept)."""
    loop = _Loop(model, train_data, val_data, cfg, run, dist_info)
    if resume:
        loop.restore()
    else:
        seed_everything(cfg.seed * 7919 + loop.info.rank)  # per-rank noise; weights: rank 0's
    loop.start(resume=resume, progress=progress)
    try:
        while loop.step < cfg.steps:
            loop.iteration(on_eval)
    finally:
        loop.bar.close()
        if loop.log is not None:
            loop.log.close()
    return loop.summary()


class _Loop:
    """The state of one training run and the stages of an iteration (see the module
    docstring): everything a checkpoint holds, and what the loop logs between them."""

    def __init__(
        self,
        model: nn.Module,
        train_data: Dataset,
        val_data: Dataset | None,
        cfg: TrainConfig,
        run: RunDir,
        dist_info: DistInfo | None,
    ):
        from genlab.writers import writer_for

        self.device, self.info = training_device(cfg.device, dist_info)
        self.model, self.cfg, self.run = model, cfg, run
        self.train_data, self.val_data = train_data, val_data
        self.sample_kind = train_data.spec.kind  # what the model samples: the data's kind
        writer_for(self.sample_kind)  # a kind without a sample writer: refused before training
        model.to(self.device)
        model.train()
        info = self.info
        self.sampler = EpochSampler(
            len(train_data), cfg.batch_size, cfg.seed, info.rank, info.world_size
        )
        self.optimizer = make_optimizer(model, cfg)
        self.ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.step, self.best = 0, math.inf
        self.last_saved: int | None = None
        self.summary_values: dict[str, float] = {}
        self.logged: dict[str, float] = {}  # the last step's loss terms (none: nothing trained)

    def restore(self) -> None:
        """Continue from the newest complete checkpoint: weights, optimizer, EMA, data order,
        RNG states, step and best validation loss."""
        ckpt, state = restore_latest(self.run, self.model)
        with restoring(ckpt):
            self.optimizer.load_state_dict(state["optimizer"])
            if self.ema is not None:
                self.ema.load_state_dict(load_weights(ckpt / EMA_WEIGHTS))
                self.ema.updates = int(state["ema_updates"])
            self.sampler.load_state_dict(state["sampler"])
            rngs = state["rng"]
            set_rng_state(rngs[self.info.rank] if self.info.enabled else rngs[0])
            self.step, self.best = int(state["step"]), float(state["best"])
        self.last_saved = self.step

    def start(self, *, resume: bool, progress: bool) -> None:
        """The loss function (under DDP and torch.compile when asked), the evaluation copy,
        the metrics log and the progress bar."""
        cfg, info, model = self.cfg, self.info, self.model
        loss_module: nn.Module = _LossModule(model)
        if info.enabled:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            loss_module = DistributedDataParallel(loss_module, device_ids=device_ids)
        self.loss_fn = _compiled(loss_module, cfg.compile)
        self.eval_model = copy.deepcopy(model) if self.ema is not None else model
        resume_step = self.step if resume else None
        self.log = (
            MetricsLog(self.run.metrics_path, resume_step=resume_step) if info.is_main else None
        )
        self.bar = Progress(cfg.steps, self.step, enabled=progress and info.is_main)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.tic, self.tic_step = time.perf_counter(), self.step

    def due(self, every: int) -> bool:
        """Whether this step is one of every `every` steps (the last step always is)."""
        return self.step % every == 0 or self.step == self.cfg.steps

    def iteration(self, on_eval: Callable[[int, dict[str, float]], None] | None) -> None:
        """One optimizer step, then whatever falls due at it: a log row, a validation pass,
        samples, a checkpoint (also for a new best), and the report to `on_eval`."""
        cfg = self.cfg
        logged, lr, norm = self.optimizer_step()
        self.bar.update(self.step)
        self.logged = self.log_row(logged, lr, norm) if self.due(cfg.log_every) else logged
        val, is_best = None, False
        if self.val_data is not None and self.due(cfg.eval_every):
            val, is_best = self.evaluate()
        if self.info.is_main and self.due(cfg.sample_every):
            self.write_samples()
        if self.due(cfg.checkpoint_every) or is_best:
            self.checkpoint(is_best)
        if on_eval is not None and val is not None:
            on_eval(self.step, val)

    def optimizer_step(self) -> tuple[dict[str, float], float, Tensor]:
        """Warm-up/cosine learning rate, grad_accum micro-batches, clipping, the AdamW step and
        the EMA update; returns (this rank's mean loss terms, the learning rate, the norm)."""
        cfg = self.cfg
        factor = warmup_cosine(
            self.step, warmup=cfg.warmup_steps, total=cfg.steps, floor=cfg.min_lr_ratio
        )
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * factor
        self.optimizer.zero_grad(set_to_none=True)
        logged: dict[str, float] = {}
        for _ in range(cfg.grad_accum):
            out = self.micro_batch()
            for k, v in out.items():
                logged[k] = logged.get(k, 0.0) + float(v.detach().float().mean()) / cfg.grad_accum
        norm = torch.nn.utils.clip_grad_norm_(
            self.params, cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        )
        if not torch.isfinite(norm):
            what = f"non-finite gradient norm, in {nonfinite_gradients(self.model)}"
            raise_diverged(self.step + 1, what, float(norm), self.run, self.last_saved)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        return logged, cfg.lr * factor, norm

    def micro_batch(self) -> dict[str, Tensor]:
        """Forward and backward of one micro-batch; a non-finite loss is replayed with the same
        noise to name the first layer that produced it, and stops training."""
        cfg, device = self.cfg, self.device
        batch = to_device(self.train_data.batch(self.sampler.next()), device)
        before = rng_state()  # to replay a failing forward pass with the same noise
        with autocast_context(device, cfg.precision):
            out = self.loss_fn(batch)
        loss = out["loss"].float()
        if not torch.isfinite(loss):
            set_rng_state(before)
            with autocast_context(device, cfg.precision):
                where = first_nonfinite_module(
                    self.model, functools.partial(self.model.loss, batch)
                )
            what = "non-finite loss" + (
                f", first produced by layer {where}"
                if where
                else ", no layer's output was non-finite (the loss arithmetic was)"
            )
            raise_diverged(self.step + 1, what, float(loss.detach()), self.run, self.last_saved)
        (loss / cfg.grad_accum).backward()
        return out

    def log_row(self, logged: dict[str, float], lr: float, norm: Tensor) -> dict[str, float]:
        """A metrics.csv row of the loss terms averaged over the ranks (every rank logs at this
        step), the learning rate, the gradient norm and the speed; returns the averages."""
        speed = (self.step - self.tic_step) / max(time.perf_counter() - self.tic, 1e-9)
        self.tic, self.tic_step = time.perf_counter(), self.step
        logged = mean_over_ranks(logged, self.info, self.device)
        row = {**logged, "lr": lr, "grad_norm": float(norm), "it_per_s": speed}
        if self.log is not None:
            self.log.log(self.step, row)
        self.bar.update(self.step, f"loss {logged['loss']:.4f}", speed)
        return logged

    def evaluate(self) -> tuple[dict[str, float], bool]:
        """The validation loss terms (of the EMA weights when kept), averaged over the ranks and
        logged as val_*; returns them and whether the loss is a new best."""
        cfg = self.cfg
        if self.ema is not None:
            self.ema.copy_to(self.eval_model)
        val = evaluate_loss(
            self.eval_model,
            self.val_data,
            batch_size=cfg.batch_size,
            device=self.device,
            max_batches=cfg.eval_batches,
            seed=cfg.seed,
            precision=cfg.precision,
        )
        val = mean_over_ranks(val, self.info, self.device)
        is_best = val["loss"] < self.best
        self.best = min(self.best, val["loss"])
        metrics = {f"val_{k}": v for k, v in val.items()}
        self.summary_values.update(metrics)
        if self.log is not None:
            self.log.log(self.step, metrics)
        return metrics, is_best

    def write_samples(self) -> None:
        if self.ema is not None:
            self.ema.copy_to(self.eval_model)
        save_samples(
            self.eval_model,
            self.cfg.sample_n,
            self.run.samples_dir / f"step-{self.step:08d}.png",
            seed=self.cfg.seed,
            device=self.device,
            kind=self.sample_kind,
        )

    def checkpoint(self, is_best: bool) -> None:
        """Save everything a resume needs (rank 0 writes; every rank's RNG state is in it)."""
        cfg, info = self.cfg, self.info
        rngs = all_rng_states(info)
        if info.is_main:
            state = {
                "step": self.step,
                "best": self.best,
                "optimizer": self.optimizer.state_dict(),
                "sampler": self.sampler.state_dict(),
                "ema_updates": self.ema.updates if self.ema is not None else 0,
                "rng": rngs,
                "schedule": {
                    "kind": "warmup_cosine",
                    "warmup": cfg.warmup_steps,
                    "total": cfg.steps,
                    "floor": cfg.min_lr_ratio,
                },
            }
            ema = self.ema.state_dict() if self.ema is not None else None
            self.run.save_checkpoint(
                self.step,
                self.model.state_dict(),
                ema,
                state,
                keep_last=cfg.keep_last,
                best=is_best,
            )
        self.last_saved = self.step
        barrier(info)

    def summary(self) -> dict[str, float]:
        """The step reached, the last training loss, the last val_* metrics and the best
        validation loss (a resumed run with nothing left to train: the last logged ones)."""
        summary, logged = self.summary_values, self.logged
        if not logged and self.log is not None:
            latest = self.log.latest()
            summary.update({k: v for k, v in latest.items() if k.startswith("val_")})
            logged = {"loss": latest["loss"]} if "loss" in latest else {}
        summary["step"] = self.step
        if "loss" in logged:  # the mean over the ranks (rank 0 prints it)
            summary["train_loss"] = logged["loss"]
        if math.isfinite(self.best):
            summary["best_val_loss"] = self.best
        return summary


def raise_diverged(
    step: int,
    what: str,
    value: float,
    run: RunDir,
    last_saved: int | None,
    hint: str = "Try a lower lr, gradient clipping (train.grad_clip) or fp32 precision.",
) -> None:
    kept = (
        f"the last good checkpoint (step {last_saved}) is kept in {run.path}"
        if last_saved is not None
        else "no checkpoint had been written yet"
    )
    raise TrainingDiverged(f"training diverged at step {step}: {what} ({value}); {kept}. {hint}")
