"""Programmatic rewards for text (policy-gradient fine-tuning, genlab.rl.pg_lm): each maps a
generated text to a number, higher is better, and takes its settings from the model's config.

- `keyword`: how often the text says a word: occurrences of `keyword` (whole words, any case)
  per 100 characters, so longer texts are not favoured for their length alone.
- `line_length`: lines near `line_length` characters: minus the mean absolute difference of
  each complete line's length from the target, divided by it (0 is perfect; a text without a
  complete line scores -1).
- `rhyme`: the fraction of consecutive complete lines whose last words end in the same two
  letters (a crude spelling rhyme: "night"/"light", "day"/"away").
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

WORD = re.compile(r"[A-Za-z']+")


def keyword(text: str, config: Any) -> float:
    word = config.keyword.lower()
    count = sum(1 for w in WORD.findall(text) if w.lower() == word)
    return 100.0 * count / max(len(text), 1)


def _lines(text: str) -> list[str]:
    """The complete lines (those followed by a newline), stripped; empty ones dropped."""
    return [line.strip() for line in text.split("\n")[:-1] if line.strip()]


def line_length(text: str, config: Any) -> float:
    lines = _lines(text)
    if not lines:
        return -1.0
    target = config.line_length
    return -sum(abs(len(line) - target) for line in lines) / (len(lines) * target)


def rhyme(text: str, config: Any) -> float:
    ends = []
    for line in _lines(text):
        words = WORD.findall(line)
        ends.append(words[-1].lower()[-2:] if words else "")
    pairs = list(itertools.pairwise(ends))
    if not pairs:
        return 0.0
    return sum(1 for a, b in pairs if a and len(a) == 2 and a == b) / len(pairs)


REWARDS: dict[str, Callable[[str, Any], float]] = {
    "keyword": keyword,
    "line_length": line_length,
    "rhyme": rhyme,
}
