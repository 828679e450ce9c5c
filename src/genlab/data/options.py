"""Checks for dataset options, which arrive from users (CLI flags, config files, HTTP).

Options are validated where they enter and never coerced: `image_size="32"` is an error, not 32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from genlab.errors import GenlabError, close_matches

T = TypeVar("T")


def int_option(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    """`value` if it is an int in [minimum, maximum], else a GenlabError naming the option."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise GenlabError(f"option {name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise GenlabError(f"option {name} must be {bound}, got {value}")
    return value


def choice_option(name: str, value: object, choices: Sequence[T]) -> T:
    """The choice equal to `value` and of the same type (1.0 is not 1), else a GenlabError."""
    for choice in choices:
        if type(choice) is type(value) and choice == value:
            return choice
    hint = close_matches(value, [str(c) for c in choices]) if isinstance(value, str) else ""
    listed = ", ".join(str(c) for c in choices)
    raise GenlabError(f"option {name} must be one of {listed}, got {value!r}{hint}")
