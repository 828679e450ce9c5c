"""What a request may say, per kind of model, and the server's limits.

A text model (contract.TokenGenerator) takes a TextRequest; any other model a SampleRequest,
whose option fields (label, truncation, temperature, ...) are the served SampleOptions of the
registered models (contract.option_fields), so a model's new option needs no edit here; which
of them a given model takes, and within which bounds, is checked per model by the store.

Requests are pydantic models in strict mode with no extra fields, so a string where a number
belongs, an unknown field or a value out of range is a 422 naming the field. Integer fields take
integral floats (`986.0`): JSON has one number type and JSON Schema calls 986.0 an integer, so
clients that write every number as a float are understood. The limits that a deployment sets
(the most samples, tokens, body bytes, pixels per uploaded image, the time per request) are
checked by the service on top, also as 4xx errors that say what the limit is.

The image-to-image route takes a multipart form instead (genlab.serve.uploads reads it); its
OpenAPI description is made here the same way, from the registered translators' image inputs
and served TranslateOptions.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from genlab.generation import MIN_DIVISOR  # temperature / repetition penalty
from genlab.serve.encoders import ENCODERS

SEED_MAX = 2**63 - 1
JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean"}


@dataclass(frozen=True)
class Limits:
    max_n: int = 64  # samples per image request
    max_tokens: int = 1024  # new tokens per text request
    max_prompt_chars: int = 10_000
    max_body_bytes: int = 1 << 20  # 1 MiB (an uploaded image's form included)
    max_pixels: int = 1 << 22  # per uploaded image (2048 x 2048), read from its header
    timeout_s: float = 30.0  # per request, queueing included
    max_batch: int = 64  # samples per forward pass (micro-batching); 1 = off
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for others

    def validate(self) -> None:
        for name in (
            "max_n",
            "max_tokens",
            "max_prompt_chars",
            "max_body_bytes",
            "max_pixels",
            "max_batch",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.timeout_s > 0 and math.isfinite(self.timeout_s)):
            raise ValueError(f"timeout_s must be a positive number, got {self.timeout_s}")
        if not (0 <= self.max_wait_ms < 10_000):
            raise ValueError(f"max_wait_ms must be in [0, 10000), got {self.max_wait_ms}")


def _integral(value: Any) -> Any:
    """986.0 -> 986; any other value is left to the strict int check (2.5, "3" and true fail)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


class SampleRequest(BaseModel):
    """Samples from a model that is not a text model (images, vectors, ...). The model's sample
    options (label, truncation, temperature, ...) are added by :func:`sample_request`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    n: int = Field(1, ge=1, description="how many samples (at most the server's max_n)")
    seed: int | None = Field(None, ge=0, le=SEED_MAX, description="None: a random seed")
    format: Literal[tuple(ENCODERS)] = Field(  # type: ignore[valid-type]
        "png", description="; ".join(f"{name}: {e.help}" for name, e in ENCODERS.items())
    )

    _integral_ints = field_validator("n", "seed", mode="before")(_integral)


def option_type(options: type, field: dataclasses.Field) -> Any:
    """The value type of a SampleOptions field (int, float, str, ...), without its None."""
    hint = typing.get_type_hints(options)[field.name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


@dataclass
class _WireOption:
    """One request field of SampleRequest: a served option merged over every model that has
    it, with the loosest bounds (each model's own are checked per request)."""

    types: list[Any]
    help: str
    ge: float | None
    le: float | None
    choices: tuple[str, ...] | None

    def merge(self, kind: Any, meta: Mapping[str, Any]) -> None:
        if kind not in self.types:
            self.types.append(kind)
        self.ge = None if self.ge is None or meta.get("ge") is None else min(self.ge, meta["ge"])
        self.le = None if self.le is None or meta.get("le") is None else max(self.le, meta["le"])
        more = meta.get("choices")
        self.choices = None if not (self.choices and more) else (*self.choices, *more)

    def json_schema(self) -> dict[str, Any]:
        """The option as a form field's JSON Schema (multipart fields carry it as text)."""
        names = [JSON_TYPES.get(kind, "string") for kind in self.types]
        schema: dict[str, Any] = {"type": names[0] if len(names) == 1 else names}
        if self.choices:
            schema = {"type": "string", "enum": list(dict.fromkeys(self.choices))}
        bounds = {"minimum": self.ge, "maximum": self.le}
        schema.update({key: value for key, value in bounds.items() if value is not None})
        return {**schema, "description": self.help}

    def field(self) -> tuple[Any, Any]:
        kind = functools.reduce(operator.or_, self.types)  # int, or int | float, ...
        if self.choices:
            kind = Literal[tuple(dict.fromkeys(self.choices))]
        return kind | None, Field(None, ge=self.ge, le=self.le, description=self.help)


def _served_options(translators: bool = False) -> dict[str, _WireOption]:
    """Every registered model's served sample options (with `translators`: every registered
    Translator's translate options), merged by name, in registry order."""
    from genlab.contract import Translator, option_fields, sample_options, translate_options
    from genlab.registry import MODELS, model_class

    merged: dict[str, _WireOption] = {}
    for name in MODELS:
        try:
            cls = model_class(name)
        except ImportError:  # a family whose packages are not installed: not servable here
            continue
        if translators and not isinstance(cls, Translator):
            continue
        options = translate_options(cls) if translators else sample_options(cls)
        taken = cls.translate_inputs if translators else tuple(SampleRequest.model_fields)
        for f in option_fields(cls, served=True, options=options):
            kind, meta = option_type(options, f), f.metadata
            if f.name in taken:
                raise TypeError(f"{name}: option {f.name!r} would shadow a request field")
            if f.name in merged:
                merged[f.name].merge(kind, meta)
            else:
                merged[f.name] = _WireOption(
                    [kind],
                    meta.get("help", ""),
                    meta.get("ge"),
                    meta.get("le"),
                    meta.get("choices"),
                )
    return merged


@functools.cache
def sample_request() -> type[SampleRequest]:
    """SampleRequest with a field per sample option that some registered model serves (made on
    first use: it imports every model class). A new option needs no edit here."""
    options = _served_options()
    fields = {name: option.field() for name, option in options.items()}
    ints = [n for n, o in options.items() if int in o.types and not o.choices]
    floats = [n for n, o in options.items() if float in o.types and not o.choices]
    validators = {}
    if ints:
        validators["_integral_options"] = field_validator(*ints, mode="before")(_integral)
    if floats:
        validators["_finite_options"] = field_validator(*floats)(_finite)
    return create_model(
        "SampleRequest", __base__=SampleRequest, __validators__=validators, **fields
    )


class TextRequest(BaseModel):
    """Text from a language model."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str = Field(..., min_length=1, description="text to continue")
    max_new_tokens: int | None = Field(
        None, ge=1, description="at most the server's max_tokens; default 100 (or that limit)"
    )
    temperature: float = Field(0.8, ge=0, le=10, description="0 = greedy, else at least 0.01")
    top_k: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0, le=1)
    repetition_penalty: float = Field(1.0, ge=MIN_DIVISOR, le=10, description="1 = none")
    stop: list[str] = Field(default_factory=list, max_length=8, description="stop before these")
    seed: int | None = Field(None, ge=0, le=SEED_MAX)
    stream: bool = Field(False, description="server-sent events, a piece of text at a time")

    _finite_floats = field_validator("temperature", "top_p", "repetition_penalty")(_finite)
    _integral_ints = field_validator("max_new_tokens", "top_k", "seed", mode="before")(_integral)

    @field_validator("temperature")
    @classmethod
    def _greedy_or_at_least(cls, value: float) -> float:
        if 0 < value < MIN_DIVISOR:
            raise ValueError(f"must be 0 (greedy) or at least {MIN_DIVISOR}")
        return value

    @field_validator("stop")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if any(not s for s in value):
            raise ValueError("stop strings must be non-empty")
        return value


def describe(error: ValidationError) -> str:
    """One line: 'n: Input should be greater than or equal to 1; seed: ...'."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def openapi_request_schema() -> dict[str, Any]:
    """The request body of /v1/models/{name}/generate, for the OpenAPI spec."""
    return {
        "oneOf": [
            {**sample_request().model_json_schema(), "title": "SampleRequest"},
            {**TextRequest.model_json_schema(), "title": "TextRequest"},
        ]
    }


def openapi_translate_schema() -> dict[str, Any]:
    """The multipart form of /v1/models/{name}/translate, for the OpenAPI spec: a file field
    per image input and a text field per translate option of the registered translators (which
    of them a given model takes, within which bounds, is checked per request)."""
    from genlab.contract import Translator
    from genlab.registry import MODELS, model_class

    inputs: dict[str, None] = {"image": None}
    for name in MODELS:
        try:
            cls = model_class(name)
        except ImportError:
            continue
        if isinstance(cls, Translator):
            inputs.update(dict.fromkeys(cls.translate_inputs))
    about = "an image file (PNG, JPEG, ...); `image` is translated, the others (a style) guide it"
    properties: dict[str, Any] = {
        name: {"type": "string", "format": "binary", "description": about} for name in inputs
    }
    options = _served_options(translators=True)
    properties.update({name: option.json_schema() for name, option in options.items()})
    return {
        "type": "object",
        "required": ["image"],
        "properties": properties,
        "additionalProperties": False,
    }
