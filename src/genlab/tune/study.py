"""Studies: Optuna trials that train genlab runs, on any storage, with any worker count.

A trial draws options from the search space, trains a run with them (`genlab.api.train_run`,
so any registered model works) under `OUT/trials/trial-NNNN`, and returns the objective:
- a metric the training loop reports on the validation data (`val_loss`, or any `val_*` term
  the model's loss logs, e.g. `val_bits_per_dim`): every trainer (contract.Trainer, whatever
  the model family) hands each evaluation to `on_eval(step, metrics)`, where the trial reports
  it, so a pruner can stop a bad trial early;
- or a metric of `genlab evaluate` on the validation split after training (`nll_nats`,
  `bits_per_dim`, or a sample metric: `fid`, `kid`, `is`, `precision`, `recall`, with
  `features` digits or inception).
With `folds=K` every trial trains K runs (k-fold cross-validation on the training split, see
genlab.data.base.kfold) and its value is the mean over the folds (their values and standard
deviation are kept as trial attributes); pruning then happens between folds.

Storage (`storage_from_url`): none (in memory, one process), a journal file (`journal:PATH`,
or a path ending in .log / .journal: several processes on one host), SQLite (`sqlite:///PATH`:
one worker; a warning when another is seen), PostgreSQL (`postgresql://...`: several
machines). Every worker runs the same command and joins the study by name; the study stops
taking new trials once it holds `trials` of them (all workers together).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import socket
import statistics
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.errors import GenlabError
from genlab.tune.space import Space, format_value

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "asha", "hyperband")
SAMPLE_METRICS = {"fid": False, "kid": False, "is": True, "precision": True, "recall": True}
MAXIMIZE = {"is", "precision", "recall", "val_accuracy"}


@dataclass
class TuneSettings:
    model: str
    data: str
    space: Space
    out: Path
    sampler: str = "tpe"
    trials: int | None = 20  # None: the whole grid (grid search)
    pruner: str = "none"
    storage: str | None = None
    study: str | None = None
    folds: int | None = None
    metric: str = "val_loss"
    direction: str | None = None
    steps: int | None = None
    seed: int = 0
    fixed: dict[str, str] = field(default_factory=dict)  # -o options every trial gets
    eval_every: int = 1  # the trainer's validation interval (the pruners' first rung)
    features: str = "digits"  # sample metrics: the feature network
    eval_n: int = 2000  # sample metrics: samples per evaluation
    protocol: str | None = None  # sample metrics on Inception: tf (default) or pytorch-fid

    def validate(self) -> None:
        if self.protocol is not None:  # refused before any trial trains
            from genlab.metrics.evaluate import check_protocol

            check_protocol(self.features, self.protocol)
        if self.sampler not in SAMPLERS:
            raise GenlabError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.pruner not in PRUNERS:
            raise GenlabError(f"pruner must be one of {', '.join(PRUNERS)}, got {self.pruner!r}")
        if self.trials is not None and self.trials < 1:
            raise GenlabError(f"--trials must be >= 1, got {self.trials}")
        if self.folds is not None and self.folds < 2:
            raise GenlabError(f"--folds must be >= 2, got {self.folds}")
        if self.direction not in (None, "minimize", "maximize"):
            raise GenlabError(f"direction must be minimize or maximize, got {self.direction!r}")
        if self.folds and not self.metric.startswith("val_"):
            raise GenlabError(
                f"with --folds the metric must be one the training loop reports on the held-out "
                f"fold (val_loss, val_...), got {self.metric!r}"
            )
        if self.sampler == "grid":
            self.space.grid()  # a finite grid, no conditional entries

    @property
    def resolved_direction(self) -> str:
        if self.direction:
            return self.direction
        return "maximize" if self.metric in MAXIMIZE else "minimize"

    @property
    def study_name(self) -> str:
        return self.study or f"{self.model}-{self.data}".replace(":", "-").replace("/", "-")

    @property
    def total_trials(self) -> int:
        if self.sampler == "grid":
            size = self.space.grid_size()
            return size if self.trials is None else min(self.trials, size)
        return 20 if self.trials is None else self.trials


# --- storage, sampler, pruner ----------------------------------------------------------------
def storage_from_url(url: str | None):
    """An Optuna storage for `url` (see the module docstring)."""
    import optuna

    if url in (None, "", "memory", "memory:"):
        return optuna.storages.InMemoryStorage()
    assert url is not None
    if url.startswith("journal:") or url.endswith((".log", ".journal")):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url.removeprefix("journal:")).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if url.startswith(("sqlite:", "postgresql:", "postgresql+", "mysql:", "mysql+")):
        return _rdb_storage(url)
    raise GenlabError(
        f"unknown storage {redact_url(url)!r}: use journal:PATH, sqlite:///PATH or "
        "postgresql://USER@HOST/DB"
    )


def redact_url(url: str) -> str:
    """`url` fit for a message: the password of `scheme://user:PASSWORD@host` and of a
    `password=` query parameter replaced by ***. Everything up to the last @ counts as the user
    part, so an unescaped @ or / in a password is hidden too."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        userinfo, _, host = rest.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.partition(":")[0] + ":***"
        url = f"{scheme}{sep}{userinfo}@{host}"
    return re.sub(r"(?i)(password=)[^&]*", r"\1***", url)


def _hide_secrets(text: str, url: str) -> str:
    """`text` (a driver's error message) with every secret of `url` replaced by ***: drivers
    and SQLAlchemy may quote the URL or its parts."""
    from urllib.parse import unquote

    _, sep, rest = url.partition("://")
    secrets = re.findall(r"(?i)password=([^&]*)", url)
    if sep and "@" in rest:
        userinfo = rest.rpartition("@")[0]
        if ":" in userinfo:
            secrets.append(userinfo.partition(":")[2])
    for secret in sorted({x for s in secrets for x in (s, unquote(s)) if x}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text.replace(url, redact_url(url))


def _rdb_storage(url: str, attempts: int = 6):
    """An RDBStorage. A plain postgresql:// URL uses psycopg2 (the tune extra's driver) when
    psycopg 3, SQLAlchemy's default, is absent. Workers that open a new database at the same
    moment race to create Optuna's tables; the losers retry after a short random pause."""
    import importlib.util
    import random

    import optuna

    given = redact_url(url)  # errors name the URL as the user wrote it, without its password
    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None:
        url = "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    options = {"pool_pre_ping": True} if not url.startswith("sqlite") else {}
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=options)
        except ImportError as e:
            raise GenlabError(
                f"cannot use {given.split(':')[0]} storage: {_hide_secrets(str(e), url)}"
            ) from None
        except Exception as e:  # sqlalchemy's many errors: a bad URL, no server, a race
            message = _hide_secrets((str(e).strip() or type(e).__name__).splitlines()[0], url)
            racing = "already exists" in message or "duplicate key" in message
            if not racing or attempt == attempts - 1:
                raise GenlabError(f"cannot open the storage {given}: {message}") from None
            time.sleep(0.2 + random.random() * (attempt + 1))
    raise AssertionError("unreachable")


def sampler_seed(settings: TuneSettings) -> int:
    """The sampler's seed: --seed in memory (one worker, reproducible); with a shared storage
    also this worker's host and process, so that workers do not repeat each other's draws."""
    if settings.storage in (None, "", "memory", "memory:"):
        return settings.seed
    return (settings.seed * 1_000_003 + zlib.crc32(worker_id().encode())) % 2**32


def worker_id() -> str:
    """This worker process: host and pid (recorded on each of its trials)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def make_sampler(settings: TuneSettings):
    import optuna

    if settings.sampler == "grid":
        return optuna.samplers.GridSampler(settings.space.grid(), seed=sampler_seed(settings))
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=sampler_seed(settings))
    # Explicit, since the defaults changed between Optuna 4 and 5: a joint (multivariate) model
    # of the parameters, grouped for conditional spaces, and a constant liar so that parallel
    # workers do not all pick the same promising point.
    with warnings.catch_warnings():  # group and constant_liar are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=sampler_seed(settings), multivariate=True, group=True, constant_liar=True
        )


def make_pruner(settings: TuneSettings):
    import optuna

    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    # Resources are training steps (folds with --folds): the first rung is the first report.
    first = 1 if settings.folds else settings.eval_every
    if settings.pruner == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=first, reduction_factor=3)
    if settings.pruner == "hyperband":
        last = settings.folds or settings.steps or "auto"
        return optuna.pruners.HyperbandPruner(
            min_resource=first, max_resource=last, reduction_factor=3
        )
    return optuna.pruners.NopPruner()


def open_study(settings: TuneSettings):
    import optuna

    settings.validate()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # genlab's view reports the trials
    storage = storage_from_url(settings.storage)
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=settings.study_name,
            direction=settings.resolved_direction,
            sampler=make_sampler(settings),
            pruner=make_pruner(settings),
            load_if_exists=True,
        )
    except ValueError as e:  # e.g. joining a study that has another direction
        raise GenlabError(f"cannot join study {settings.study_name!r}: {e}") from None
    study.set_user_attr("model", settings.model)
    study.set_user_attr("data", settings.data)
    study.set_user_attr("metric", settings.metric)
    return study


# --- the objective ---------------------------------------------------------------------------
def trial_overrides(settings: TuneSettings, params: dict[str, Any]) -> dict[str, str]:
    return {**settings.fixed, **{k: format_value(v) for k, v in params.items()}}


def _metric_from(summary: dict[str, float], run: Path, settings: TuneSettings) -> float:
    if settings.metric in summary:
        return float(summary[settings.metric])
    from genlab.api import evaluate

    sample = settings.metric in SAMPLE_METRICS
    result = evaluate(
        run,
        split="val",
        figures=False,
        metrics=settings.metric if sample else None,
        n=settings.eval_n,
        features=settings.features,
        protocol=settings.protocol,
    )
    for key in (settings.metric, f"{settings.metric}_{settings.features}"):
        if isinstance(result.get(key), int | float):
            return float(result[key])
    if settings.metric not in result:
        known = sorted(k for k, v in {**summary, **result}.items() if isinstance(v, int | float))
        raise GenlabError(
            f"no metric {settings.metric!r} for this model; it reports: {', '.join(known)}"
        )
    return float(result[settings.metric])


def objective(settings: TuneSettings, *, progress: bool = False) -> Callable[[Any], float]:
    import optuna

    from genlab.api import train_run

    def run_one(trial: optuna.Trial) -> float:
        params = settings.space.suggest(trial)
        overrides = trial_overrides(settings, params)
        folder = settings.out / "trials" / f"trial-{trial.number:04d}"
        if folder.exists():  # a retried trial number (never reused by Optuna, but be safe)
            shutil.rmtree(folder)
        trial.set_user_attr("run", str(folder))
        trial.set_user_attr("worker", worker_id())
        start = time.perf_counter()

        def report(step: int, metrics: dict[str, float]) -> None:
            if settings.metric in metrics and math.isfinite(metrics[settings.metric]):
                trial.report(metrics[settings.metric], step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at step {step}")

        try:
            if settings.folds:
                values = []
                for i in range(settings.folds):
                    _, summary = train_run(
                        settings.model, settings.data, folder / f"fold-{i}",
                        overrides=overrides, steps=settings.steps, seed=settings.seed,
                        progress=progress, fold=(settings.folds, i),
                    )  # fmt: skip
                    values.append(_metric_from(summary, folder / f"fold-{i}", settings))
                    trial.set_user_attr("fold_values", values)
                    trial.report(statistics.fmean(values), i)
                    if i < settings.folds - 1 and trial.should_prune():
                        raise optuna.TrialPruned(f"pruned after fold {i}")
                value = statistics.fmean(values)
                trial.set_user_attr("fold_std", statistics.stdev(values))
            else:
                _, summary = train_run(
                    settings.model, settings.data, folder, overrides=overrides,
                    steps=settings.steps, seed=settings.seed, progress=progress, on_eval=report,
                )  # fmt: skip
                value = _metric_from(summary, folder, settings)
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - start, 3))
        return value

    return run_one


def count_trials(study) -> int:
    return len(study.get_trials(deepcopy=False))


def run_study(
    settings: TuneSettings,
    *,
    on_trial: Callable[[Any, Any], None] | None = None,
    progress: bool = False,
):
    """Join (or create) the study and run trials until it holds `total_trials` of them, with
    every worker's trials counted. Returns the study."""
    import optuna

    from genlab.errors import TrainingDiverged

    study = open_study(settings)
    fn = objective(settings, progress=progress)
    warned = False
    while count_trials(study) < settings.total_trials:
        if settings.storage and settings.storage.startswith("sqlite") and not warned:
            running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            if running:
                warnings.warn(
                    "another worker is using this SQLite study: SQLite locks the whole file and "
                    "is meant for one process; use journal:PATH (one host) or PostgreSQL",
                    stacklevel=2,
                )
                warned = True
        before = count_trials(study)
        study.optimize(fn, n_trials=1, catch=(TrainingDiverged,), gc_after_trial=False)
        if on_trial is not None:
            me = worker_id()
            for trial in study.get_trials(deepcopy=False)[before:]:
                if trial.user_attrs.get("worker") == me and trial.state.is_finished():
                    on_trial(study, trial)
    return study
