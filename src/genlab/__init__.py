"""genlab: the generative-AI roadmap made runnable.

`import genlab` is cheap: the model families, data and training code load on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "evaluate", "export", "generate", "info", "load", "sample", "train_run"]


def __getattr__(name: str) -> Any:
    if name in ("load", "train_run", "evaluate", "sample", "info", "export"):
        from genlab import api

        return getattr(api, name)
    if name == "generate":  # any token generator's run (genlab.generation)
        from genlab.generation import generate_run

        return generate_run
    raise AttributeError(f"module 'genlab' has no attribute {name!r}")
