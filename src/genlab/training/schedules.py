"""Learning-rate schedules as multipliers of the base rate (for torch's LambdaLR)."""

from __future__ import annotations

import math


def warmup_cosine(step: int, *, warmup: int, total: int, floor: float) -> float:
    """Linear warm-up from ~0 to 1 over `warmup` steps, then cosine decay to `floor` at `total`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
