"""Where did a NaN come from? Name the first layer whose output was not finite.

Used by the training loops when a loss or gradient turns non-finite: the failing step is run
again under forward hooks (with the RNG restored, so the same noise is drawn) and the first
module, in execution order, whose output holds a NaN or an infinity is named. Forward hooks fire
when a module's forward returns, so the innermost module that produced the value is the first to
fire.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn


def _tensors(value: Any):
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


def first_nonfinite_module(model: nn.Module, forward: Callable[[], Any]) -> str | None:
    """Run `forward()` without gradients; return "name (Class)" of the first submodule whose
    output is non-finite, or None when every module's output was finite."""
    found: list[str] = []

    def hook(name: str):
        def check(module: nn.Module, _inputs: Any, output: Any) -> None:
            if not found and any(
                t.is_floating_point() and not bool(torch.isfinite(t).all())
                for t in _tensors(output)
            ):
                found.append(f"{name} ({type(module).__name__})")

        return check

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            forward()
    except Exception:  # the diagnosis must not hide the divergence it explains
        pass
    finally:
        for handle in handles:
            handle.remove()
    return found[0] if found else None


def nonfinite_gradients(model: nn.Module, limit: int = 3) -> str:
    """The names of (up to `limit`) parameters whose gradient holds a NaN or an infinity."""
    names = [
        name
        for name, p in model.named_parameters()
        if p.grad is not None and not bool(torch.isfinite(p.grad).all())
    ]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
