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
    fixed: dict[str, str] | None = None,
    out: str | Path | None = None,
    console: Any = None,
    live: bool = False,
    **options: Any,
):
    """Run (or join) a study and write its results; returns (the study, the files written).

    `fixed`: `-o` options every trial gets, layered over the model's defaults exactly as
    `genlab train` layers them (genlab.settings); `options`: the fields of
    genlab.tune.study.TuneSettings (sampler, trials, pruner, storage, study, folds, metric,
    direction, steps, seed, features, eval_n), as `genlab tune` passes its flags."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise GenlabError("tuning needs optuna: pip install 'genlab[tune]'") from None
    from genlab.settings import resolve
    from genlab.tune.report import write_results
    from genlab.tune.space import load_space
    from genlab.tune.study import TuneSettings, run_study

    fixed = dict(fixed or {})
    layers = resolve(model, overrides=fixed)
    settings = TuneSettings(
        model=model,
        data=data,
        space=load_space(space, model_config=layers.model_config_for(), train_config=layers.train),
        out=Path("."),
        fixed=fixed,
        eval_every=layers.train.eval_every,  # the trainer's evaluation interval: the first rung
        **options,
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
