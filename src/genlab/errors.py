"""User-facing errors.

Anything raised as a :class:`GenlabError` is a problem with the user's input (a name, a file, an
override) or their environment (no network, an unwritable folder). The CLI prints its message on
one line on stderr and exits with :attr:`GenlabError.exit_code`; it never shows a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GenlabError(Exception):
    """A clear, one-line problem at the boundary (CLI, files, HTTP). Exit code 2."""

    exit_code = 2


class TrainingDiverged(GenlabError):
    """Training produced a non-finite loss or gradient; the last good checkpoint is kept."""

    exit_code = 3


def close_matches(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean: a, b?)' suffix, or '' when nothing is close."""
    matches = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f" (did you mean: {', '.join(matches)}?)" if matches else ""
