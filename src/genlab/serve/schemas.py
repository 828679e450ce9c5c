"""What a request may say, per kind of model, and the server's limits.

Requests are pydantic models in strict mode with no extra fields, so a string where a number
belongs, an unknown field or a value out of range is a 422 naming the field. Integer fields take
integral floats (`986.0`): JSON has one number type and JSON Schema calls 986.0 an integer, so
clients that write every number as a float are understood. The limits that a deployment sets
(the most samples, tokens, body bytes, the time per request) are checked by the service on top,
also as 4xx errors that say what the limit is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SEED_MAX = 2**63 - 1
# logits are divided by these: 5e-324 makes them inf and the sampling probabilities NaN
MIN_DIVISOR = 0.01


@dataclass(frozen=True)
class Limits:
    max_n: int = 64  # samples per image request
    max_tokens: int = 1024  # new tokens per text request
    max_prompt_chars: int = 10_000
    max_body_bytes: int = 1 << 20  # 1 MiB
    timeout_s: float = 30.0  # per request, queueing included
    max_batch: int = 64  # samples per forward pass (micro-batching); 1 = off
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for others

    def validate(self) -> None:
        for name in ("max_n", "max_tokens", "max_prompt_chars", "max_body_bytes", "max_batch"):
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


class ImageRequest(BaseModel):
    """Samples from an image (or vector) model."""

    model_config = ConfigDict(extra="forbid", strict=True)

    n: int = Field(1, ge=1, description="how many samples (at most the server's max_n)")
    seed: int | None = Field(None, ge=0, le=SEED_MAX, description="None: a random seed")
    label: int | None = Field(None, ge=0, description="class of every sample (conditional)")
    truncation: float | None = Field(None, ge=0, le=10, description="StyleGAN's psi")
    temperature: float | None = Field(None, ge=0, le=10, description="flows: scales the noise")
    format: Literal["png", "npy", "json"] = Field(
        "png", description="png: one base64 PNG per sample; npy: one base64 .npy array; json"
    )

    _finite_floats = field_validator("truncation", "temperature")(_finite)
    _integral_ints = field_validator("n", "seed", "label", mode="before")(_integral)


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


REQUESTS: dict[str, type[BaseModel]] = {"image": ImageRequest, "text": TextRequest}


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
            {**ImageRequest.model_json_schema(), "title": "ImageRequest"},
            {**TextRequest.model_json_schema(), "title": "TextRequest"},
        ]
    }
