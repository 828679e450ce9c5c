"""Typed configs: dataclasses with dotted `key=value` overrides and strict (de)serialisation.

Every model keeps a `@dataclass` Config next to it; the training options are
:class:`genlab.training.loop.TrainConfig`. A run's config.json holds both, and is the only thing
needed to rebuild the model. Overrides are parsed with the field's declared type, so
`-o latent_dim=16` is an int and `-o latent_dim=abc` is an error that says what was expected.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from genlab.errors import GenlabError, close_matches

C = TypeVar("C")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _parse(text: str, tp: Any, key: str) -> Any:
    """Parse `text` as type `tp` (int, float, bool, str, Literal, Optional, tuple[...], list[...])."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if type(None) in args and text.lower() in {"none", "null"}:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _parse(text, arg, key)
            except GenlabError as e:
                errors.append(str(e))
        raise GenlabError(errors[0] if errors else f"bad value {text!r} for {key}")
    if origin is Literal:
        choices = get_args(tp)
        for choice in choices:
            if str(choice) == text:
                return choice
        raise GenlabError(
            f"bad value {text!r} for {key}: expected one of {', '.join(map(str, choices))}"
        )
    if origin in (tuple, list):
        args = get_args(tp)
        parts = [p.strip() for p in text.strip("()[]").split(",") if p.strip()]
        item = args[0] if args else str
        values = [_parse(p, item, key) for p in parts]
        return tuple(values) if origin is tuple else values
    if tp is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise GenlabError(f"bad value {text!r} for {key}: expected true or false")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise GenlabError(f"bad value {text!r} for {key}: expected an integer") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise GenlabError(f"bad value {text!r} for {key}: expected a number") from None
    if tp is str:
        return text
    raise GenlabError(f"{key} cannot be set from the command line (type {tp})")


def _check_value(value: Any, tp: Any, key: str) -> Any:
    """Validate a JSON value against a field type; converts lists to tuples where declared."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None
        for arg in (a for a in get_args(tp) if a is not type(None)):
            try:
                return _check_value(value, arg, key)
            except GenlabError:
                continue
        raise GenlabError(f"bad value {value!r} for {key}")
    if origin is Literal:
        if value not in get_args(tp):
            raise GenlabError(
                f"bad value {value!r} for {key}: expected one of {', '.join(map(str, get_args(tp)))}"
            )
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise GenlabError(f"bad value {value!r} for {key}: expected a list")
        args = get_args(tp)
        item = args[0] if args else typing.Any
        items = [_check_value(v, item, key) for v in value]
        return tuple(items) if origin is tuple else items
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp in (bool, str) and isinstance(value, tp):
        return value
    if tp is typing.Any:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value, prefix=key + ".")
    raise GenlabError(f"bad value {value!r} for {key}: expected {getattr(tp, '__name__', tp)}")


def _fields(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def apply_overrides(cfg: C, overrides: dict[str, str], *, prefix: str = "") -> C:
    """A copy of `cfg` with `{"a.b": "value"}` applied; dotted keys reach nested dataclasses."""
    changes: dict[str, Any] = {}
    nested: dict[str, dict[str, str]] = {}
    fields = _fields(type(cfg))
    for key, text in overrides.items():
        head, _, rest = key.partition(".")
        if head not in fields:
            raise GenlabError(
                f"unknown option {prefix + head!r} for {type(cfg).__name__}"
                f"{close_matches(head, fields)}; valid: {', '.join(sorted(fields))}"
            )
        tp = fields[head]
        if rest:
            if not dataclasses.is_dataclass(tp):
                raise GenlabError(f"{prefix + head} has no sub-options (got {prefix + key})")
            nested.setdefault(head, {})[rest] = text
        else:
            changes[head] = _parse(text, tp, prefix + head)
    for head, sub in nested.items():
        changes[head] = apply_overrides(getattr(cfg, head), sub, prefix=prefix + head + ".")
    return _validated(dataclasses.replace(cfg, **changes))


def _validated(cfg: C) -> C:
    check = getattr(cfg, "validate", None)
    if check is not None:
        try:
            check()
        except (ValueError, AssertionError) as e:
            raise GenlabError(f"invalid {type(cfg).__name__}: {e}") from None
    return cfg


def parse_overrides(items: list[str]) -> dict[str, str]:
    """`["a=1", "b.c=x"]` -> `{"a": "1", "b.c": "x"}`; a missing '=' is an error."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise GenlabError(f"bad override {item!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls: type[C], data: dict[str, Any], *, prefix: str = "") -> C:
    """Rebuild a config strictly: unknown keys and wrongly typed values are errors."""
    if not isinstance(data, dict):
        raise GenlabError(f"expected a mapping for {cls.__name__}, got {type(data).__name__}")
    fields = _fields(cls)
    unknown = set(data) - set(fields)
    if unknown:
        bad = sorted(unknown)[0]
        raise GenlabError(
            f"unknown option {prefix + bad!r} for {cls.__name__}{close_matches(bad, fields)}"
        )
    values = {k: _check_value(v, fields[k], prefix + k) for k, v in data.items()}
    return _validated(cls(**values))
