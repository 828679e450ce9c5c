"""Search spaces: a YAML file of the options to tune, over any model's config and training.

Each top-level key is an option as `-o` names it: a model option (`latent_dim`), a training
option (`train.lr`) or a dataset option (`data.block_size`). Its value says how to draw it:

    train.lr:          {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    train.batch_size:  {type: int, low: 16, high: 64, step: 16}
    latent_dim:        {type: categorical, choices: [8, 16, 32]}
    likelihood:        {type: categorical, choices: [bernoulli, logistic]}
    num_mixtures:      {type: int, low: 2, high: 10, when: {likelihood: logistic}}

`log: true` draws on a log scale (low > 0); `step` makes a grid of low, low + step, ... high.
`when` makes an entry conditional: it is drawn only when every named earlier entry took one of
the given values (a value or a list of values); otherwise the option keeps its default.
Grid search needs a finite grid: categorical entries, int entries, float entries with a
`step` or an explicit `grid: [values]`, and no conditional entries.

Every problem (an unknown option, a wrong type, an empty choice, low > high, a value the
option cannot take) is a GenlabError naming the entry, found when the file is read, before
any trial runs.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genlab.config import apply_overrides
from genlab.errors import GenlabError, close_matches

TYPES = ("float", "int", "categorical")
FIELDS = {"type", "low", "high", "log", "step", "choices", "grid", "when"}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    grid: tuple[Any, ...] = ()
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def active(self, drawn: dict[str, Any]) -> bool:
        return all(name in drawn and drawn[name] in values for name, values in self.when)

    def values(self) -> list[Any]:
        """The grid of this entry (grid search)."""
        if self.type == "categorical":
            return list(self.choices)
        if self.grid:
            return list(self.grid)
        if self.type == "int":
            step = int(self.step or 1)
            return list(range(int(self.low), int(self.high) + 1, step))
        if self.step is None:
            raise GenlabError(
                f"{self.name}: grid search needs a step or a grid: [values] for a float entry"
            )
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]


@dataclass(frozen=True)
class Space:
    params: tuple[Param, ...]

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Draw the active entries, in file order, from an Optuna trial."""
        drawn: dict[str, Any] = {}
        for p in self.params:
            if not p.active(drawn):
                continue
            if p.type == "categorical":
                drawn[p.name] = trial.suggest_categorical(p.name, list(p.choices))
            elif p.type == "int":
                drawn[p.name] = trial.suggest_int(
                    p.name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log
                )
            else:
                drawn[p.name] = trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)
        return drawn

    def grid(self) -> dict[str, list[Any]]:
        conditional = [p.name for p in self.params if p.when]
        if conditional:
            raise GenlabError(
                f"grid search cannot use conditional entries ({', '.join(conditional)}); "
                "use random or tpe"
            )
        return {p.name: p.values() for p in self.params}

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.grid().values())


def _number(entry: str, field: str, value: Any) -> float:
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GenlabError(f"{entry}: {field} must be a number, got {value!r}")
    return value


def _entry(name: str, spec: Any, earlier: dict[str, Param]) -> Param:
    if not isinstance(spec, dict):
        raise GenlabError(f"{name}: expected a mapping with a type (float, int, categorical)")
    unknown = set(spec) - FIELDS
    if unknown:
        field = sorted(unknown)[0]
        raise GenlabError(f"{name}: unknown field {field!r}{close_matches(field, FIELDS)}")
    kind = spec.get("type")
    if kind not in TYPES:
        raise GenlabError(f"{name}: type must be one of {', '.join(TYPES)}, got {kind!r}")
    when = _conditions(name, spec.get("when"), earlier)
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise GenlabError(f"{name}: choices must be a non-empty list")
        if any(isinstance(c, dict | list) for c in choices):
            raise GenlabError(f"{name}: choices must be plain values (numbers, strings, booleans)")
        if len({repr(c) for c in choices}) != len(choices):
            raise GenlabError(f"{name}: choices repeat a value")
        extra = set(spec) - {"type", "choices", "when"}
        if extra:
            raise GenlabError(f"{name}: a categorical entry takes no {sorted(extra)[0]!r}")
        return Param(name, kind, choices=tuple(choices), when=when)
    for field in ("low", "high"):
        if field not in spec:
            raise GenlabError(f"{name}: {kind} entries need low and high")
    low, high = _number(name, "low", spec["low"]), _number(name, "high", spec["high"])
    if low > high:
        raise GenlabError(f"{name}: low ({low:g}) is greater than high ({high:g})")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise GenlabError(f"{name}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise GenlabError(f"{name}: a log scale needs low > 0, got {low:g}")
    step = spec.get("step")
    if step is not None:
        step = _number(name, "step", step)
        if step <= 0:
            raise GenlabError(f"{name}: step must be > 0, got {step:g}")
        if log:
            raise GenlabError(f"{name}: step and log cannot be used together")
    if kind == "int":
        for field, value in (("low", low), ("high", high), ("step", step)):
            if value is not None and float(value) != int(value):
                raise GenlabError(f"{name}: {field} of an int entry must be a whole number")
        low, high = int(low), int(high)
        step = None if step is None else int(step)
    grid = spec.get("grid", [])
    if not isinstance(grid, list):
        raise GenlabError(f"{name}: grid must be a list of values")
    grid = tuple(_number(name, "grid", g) for g in grid)
    if any(not low <= g <= high for g in grid):
        raise GenlabError(f"{name}: every grid value must lie in [low, high]")
    return Param(name, kind, low=low, high=high, log=log, step=step, grid=grid, when=when)


def _conditions(name: str, when: Any, earlier: dict[str, Param]) -> tuple:
    if when is None:
        return ()
    if not isinstance(when, dict) or not when:
        raise GenlabError(f"{name}: when must map earlier entries to their values")
    out = []
    for other, values in when.items():
        if other not in earlier:
            raise GenlabError(
                f"{name}: when names {other!r}, which is not an entry above it in the file"
            )
        values = tuple(values) if isinstance(values, list) else (values,)
        parent = earlier[other]
        if parent.type == "categorical":
            bad = [v for v in values if v not in parent.choices]
            if bad:
                raise GenlabError(f"{name}: when {other} = {bad[0]!r}, not one of its choices")
        out.append((other, values))
    return tuple(out)


def _check_option(name: str, value: Any, configs: dict[str, Any]) -> None:
    """Apply `name=value` to the default config it belongs to: an unknown option or a value of
    the wrong kind is an error now, not in the middle of a study."""
    head, _, rest = name.partition(".")
    if head == "data" and rest:
        return  # dataset options are checked by the dataset when it loads
    target, key = ("train", rest) if head == "train" and rest else ("model", name)
    try:
        apply_overrides(
            configs[target],
            {key: format_value(value)},
            prefix="train." if target == "train" else "",
        )
    except GenlabError as e:
        raise GenlabError(f"{name}: {e}") from None


def format_value(value: Any) -> str:
    """A drawn value as `-o key=value` text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_space(data: Any, *, model_config: Any, train_config: Any) -> Space:
    """A Space from the YAML's mapping, every entry checked against the model's default config
    and training config (dataclass instances)."""
    if not isinstance(data, dict) or not data:
        raise GenlabError("the search space must be a non-empty mapping of option: entry")
    configs = {"model": model_config, "train": train_config}
    params: dict[str, Param] = {}
    for name, spec in data.items():
        if not isinstance(name, str):
            raise GenlabError(f"entry names must be strings, got {name!r}")
        param = _entry(name, spec, params)
        probes = param.choices or param.grid or (param.low, param.high)
        for value in probes:
            _check_option(name, value, configs)
        params[name] = param
    return Space(tuple(params.values()))


def load_space(path: str | Path, *, model_config: Any, train_config: Any) -> Space:
    from genlab.fileio import read_settings

    data = read_settings(path, "search space")
    try:
        return parse_space(data, model_config=model_config, train_config=train_config)
    except GenlabError as e:
        raise GenlabError(f"{path}: {e}") from None


def nested(options: dict[str, Any]) -> dict[str, Any]:
    """{"train.lr": 1e-3, "latent_dim": 8, "data.block_size": 32} -> the sections of a config
    file that `genlab train --config` reads."""
    out: dict[str, Any] = {"model_config": {}, "train": {}, "data": {"options": {}}}
    for name, value in options.items():
        head, _, rest = name.partition(".")
        if head == "train" and rest:
            out["train"][rest] = value
        elif head == "data" and rest:
            out["data"]["options"][rest] = value
        else:
            section = out["model_config"]
            *parents, last = name.split(".")
            for part in parents:
                section = section.setdefault(part, {})
            section[last] = value
    return {k: v for k, v in out.items() if v and v != {"options": {}}}
