"""Hyperparameter tuning on Optuna: search spaces (space.py), studies on any storage with any
number of workers (study.py), results and plots (report.py). `tune()` is `genlab tune`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genlab.errors import GenlabError


def tune(
    model: str,
    data: str,
    space: str | Path,
    *,
    sampler: str = "tpe",
    trials: int | None = None,
    pruner: str = "none",
    storage: str | None = None,
    study: str | None = None,
    folds: int | None = None,
    metric: str = "val_loss",
    direction: str | None = None,
    steps: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    fixed: dict[str, str] | None = None,
    features: str = "digits",
    eval_n: int = 2000,
    console: Any = None,
    live: bool = False,
):
    """Run (or join) a study and write its results; returns (the study, the files written)."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise GenlabError("tuning needs optuna: pip install 'genlab[tune]'") from None
    from genlab.config import apply_overrides
    from genlab.contract import trainer_module
    from genlab.registry import model_class
    from genlab.tune.report import write_results
    from genlab.tune.space import load_space
    from genlab.tune.study import TuneSettings, run_study

    cls = model_class(model)
    fixed = dict(fixed or {})
    model_fixed = {k: v for k, v in fixed.items() if not k.startswith(("train.", "data."))}
    train_fixed = {k[6:]: v for k, v in fixed.items() if k.startswith("train.")}
    model_config = apply_overrides(cls.Config(), model_fixed)
    train_config = apply_overrides(
        trainer_module(cls).TrainConfig(**getattr(cls, "train_defaults", {})),
        train_fixed,
        prefix="train.",
    )
    settings = TuneSettings(
        model=model,
        data=data,
        space=load_space(space, model_config=model_config, train_config=train_config),
        out=Path("."),
        sampler=sampler,
        trials=trials,
        pruner=pruner,
        storage=storage,
        study=study,
        folds=folds,
        metric=metric,
        direction=direction,
        steps=steps,
        seed=seed,
        fixed=fixed,
        eval_every=getattr(train_config, "eval_every", 1),  # GAN loops do not evaluate
        features=features,
        eval_n=eval_n,
    )
    settings.validate()
    settings.out = Path(out) if out else Path("runs") / f"tune-{settings.study_name}"
    view = _View(console, settings, live)
    with view:
        result = run_study(settings, on_trial=view.update)
    written = write_results(result, settings.out, fixed, steps=settings.steps)
    view.final(result, written)
    return result, written


class _View:
    """The progress view: a live table on a terminal, a line per trial otherwise."""

    def __init__(self, console: Any, settings: Any, live: bool):
        self.console, self.settings, self.live_enabled = console, settings, live
        self.rows: list[Any] = []
        self._live = None

    def __enter__(self):
        if self.console is not None and self.live_enabled:
            from rich.live import Live

            self._live = Live(self._table(None), console=self.console, refresh_per_second=2)
            self._live.__enter__()
        return self

    def __exit__(self, *exc):
        if self._live is not None:
            self._live.__exit__(*exc)

    def _table(self, study):
        from rich.table import Table

        s = self.settings
        title = f"study {s.study_name}: {s.metric} ({s.resolved_direction}), {s.sampler}"
        table = Table(title=title, title_justify="left")
        for column in ("trial", "state", "value", "seconds", "params"):
            table.add_column(column)
        for t in self.rows[-15:]:
            value = "" if t.value is None else f"{t.value:.5g}"
            seconds = t.user_attrs.get("seconds", "")
            params = ", ".join(f"{k}={_short(v)}" for k, v in t.params.items())
            table.add_row(str(t.number), t.state.name.lower(), value, str(seconds), params)
        if study is not None:
            done = len(study.get_trials(deepcopy=False))
            table.caption = f"{done}/{s.total_trials} trials in the study"
        return table

    def update(self, study, trial) -> None:
        self.rows.append(trial)
        if self._live is not None:
            self._live.update(self._table(study))
        elif self.console is not None:
            value = "" if trial.value is None else f" {trial.value:.5g}"
            params = ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
            self.console.print(f"trial {trial.number} {trial.state.name.lower()}{value} ({params})")

    def final(self, study, written) -> None:
        if self.console is None:
            return
        from genlab.tune.report import best_trial

        best = best_trial(study)
        if best is not None:
            params = ", ".join(f"{k}={_short(v)}" for k, v in best.params.items())
            self.console.print(f"best: trial {best.number}, {self.settings.metric} "
                               f"{best.value:.5g} ({params})")  # fmt: skip
        for name, path in written.items():
            self.console.print(f"wrote {path} ({name})")


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
