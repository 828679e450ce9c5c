"""A study's results: the trial table (CSV and JSON), the best config as a file `genlab train
--config` reads, and three plots: the optimization history, the parameter importances and the
learning curves of every trial on one figure (training loss and validation metric against the
step: a validation curve that turns up while training keeps falling is overfitting; both
staying high is underfitting)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from genlab.fileio import atomic_write_text
from genlab.tune.space import nested

# Training options that say how a trial ran, not what it trained: its budget, how often it
# evaluated (for the pruner), logged, sampled and checkpointed, and on which device. best.yaml
# leaves them out when they were fixed with -o, so the final run gets its own defaults.
TRIAL_ONLY = frozenset(
    {
        "steps",
        "eval_every",
        "eval_batches",
        "log_every",
        "sample_every",
        "sample_n",
        "checkpoint_every",
        "keep_last",
        "device",
    }
)


def trial_rows(study) -> list[dict[str, Any]]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = t.user_attrs.get("seconds")
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value,
                "params": dict(t.params),
                "seconds": seconds,
                "fold_values": t.user_attrs.get("fold_values"),
                "fold_std": t.user_attrs.get("fold_std"),
                "run": t.user_attrs.get("run"),
                "last_step": max(t.intermediate_values) if t.intermediate_values else None,
            }
        )
    return rows


def best_trial(study):
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return study.best_trial if done else None


def write_results(
    study, out: Path, fixed: dict[str, str], *, steps: int | None = None
) -> dict[str, Path]:
    """results.json, results.csv, best.yaml (when a trial completed) and the plots.

    best.yaml holds the best trial's searched options and the fixed -o options that define the
    model, data and optimisation; not the trials' cadence and budget (TRIAL_ONLY, and `steps`,
    the trials' --steps), which its header lists."""
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    rows = trial_rows(study)
    written = {}
    summary = {
        "study": study.study_name,
        "direction": study.direction.name.lower(),
        "metric": study.user_attrs.get("metric"),
        "trials": rows,
    }
    best = best_trial(study)
    if best is not None:
        summary["best"] = {"number": best.number, "value": best.value, "params": best.params}
    written["json"] = atomic_write_text(out / "results.json", json.dumps(summary, indent=2) + "\n")
    names = sorted({k for r in rows for k in r["params"]})
    lines = [["number", "state", "value", "seconds", "fold_std", *names]]
    for r in rows:
        lines.append(
            [r["number"], r["state"], r["value"], r["seconds"], r["fold_std"]]
            + [r["params"].get(k, "") for k in names]
        )
    text = _csv(lines)
    written["csv"] = atomic_write_text(out / "results.csv", text)
    if best is not None:
        left_out = {k: v for k, v in fixed.items() if _trial_only(k) and k not in best.params}
        kept = {k: v for k, v in fixed.items() if k not in left_out}
        config = nested({**_typed(kept), **best.params})
        how = [f"{k}={v}" for k, v in left_out.items()] + ([f"--steps {steps}"] if steps else [])
        header = (
            f"# best of study {study.study_name}: trial {best.number}, "
            f"{study.user_attrs.get('metric')} = {best.value:.6g}\n"
            f"# genlab train {study.user_attrs.get('model')} --data "
            f"{study.user_attrs.get('data')} --config best.yaml\n"
        )
        if how:
            header += f"# how the trials ran (not part of this config): {', '.join(how)}\n"
        written["best"] = atomic_write_text(
            out / "best.yaml", header + yaml.safe_dump(config, sort_keys=True)
        )
    written.update(plots(study, out))
    return written


def _trial_only(key: str) -> bool:
    head, _, name = key.partition(".")
    return head == "train" and name in TRIAL_ONLY


def _typed(fixed: dict[str, str]) -> dict[str, Any]:
    """-o texts as YAML values (numbers and booleans typed)."""
    import yaml

    out = {}
    for key, text in fixed.items():
        try:
            out[key] = yaml.safe_load(text)
        except yaml.YAMLError:
            out[key] = text
    return out


def _csv(lines: list[list[Any]]) -> str:
    import io

    buffer = io.StringIO()
    csv.writer(buffer).writerows(lines)
    return buffer.getvalue()


def _curves(run: str | None) -> dict[str, list[tuple[int, float]]]:
    """The training loss and every val_* column of a run's metrics.csv (fold 0 for CV)."""
    if not run:
        return {}
    path = Path(run) / "metrics.csv"
    if not path.is_file():
        path = Path(run) / "fold-0" / "metrics.csv"
    if not path.is_file():
        return {}
    curves: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                wanted = key == "loss" or (key or "").startswith("val_")
                if wanted and value not in ("", None):
                    curves.setdefault(key, []).append((int(row["step"]), float(value)))
    return curves


def plots(study, out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna

    written = {}
    metric = study.user_attrs.get("metric", "value")
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        return written
    # 1. optimization history
    fig, ax = plt.subplots(figsize=(6, 4))
    numbers = [t.number for t in done]
    values = [t.value for t in done]
    ax.scatter(numbers, values, s=18, label="completed trial")
    pick = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
    best_so_far = [pick(values[: i + 1]) for i in range(len(values))]
    ax.step(numbers, best_so_far, where="post", color="C3", label="best so far")
    pruned = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,))
    for t in pruned:
        if t.intermediate_values:
            ax.scatter([t.number], [t.intermediate_values[max(t.intermediate_values)]],
                       marker="x", color="gray", s=18)  # fmt: skip
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.set_title("optimization history (x: pruned, at its last report)")
    ax.legend()
    fig.tight_layout()
    written["history"] = _save(fig, out / "history.png")
    # 2. parameter importances (fANOVA), once there are enough completed trials
    if len(done) >= 3 and study.best_trial.params:
        try:
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
            importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except (RuntimeError, ValueError):  # e.g. a parameter that never varied
            importances = {}
        if importances:
            fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * len(importances)))
            names = list(importances)[::-1]
            ax.barh(names, [importances[n] for n in names])
            ax.set_xlabel("importance (fANOVA, share of the variance of the objective)")
            fig.tight_layout()
            written["importances"] = _save(fig, out / "importances.png")
    # 3. learning curves: training loss (dashed) and validation metric (solid) per trial
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn = False
    for i, t in enumerate(study.get_trials(deepcopy=False)):
        curves = _curves(t.user_attrs.get("run"))
        colour = f"C{i % 10}"
        if "loss" in curves:
            steps, ys = zip(*curves["loss"], strict=True)
            ax.plot(steps, ys, "--", color=colour, alpha=0.5, linewidth=1)
            drawn = True
        val = curves.get(metric) or curves.get("val_loss")
        if val:
            steps, ys = zip(*val, strict=True)
            ax.plot(steps, ys, "-o", color=colour, markersize=3, label=f"trial {t.number}")
            drawn = True
    if drawn:
        ax.set_xlabel("step")
        ax.set_ylabel("loss (dashed: training, solid: validation)")
        ax.set_title("learning curves: a rising validation curve under a falling training one "
                     "is overfitting", fontsize=9)  # fmt: skip
        if len(done) <= 12:
            ax.legend(fontsize=7)
        fig.tight_layout()
        written["curves"] = _save(fig, out / "curves.png")
    else:
        plt.close(fig)
    return written


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
