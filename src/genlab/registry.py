"""The one explicit, lazy model registry: name -> ("module:Class", one-line description).

Grep here to find any model. Modules are imported only when a model is asked for, so
`genlab list` and `import genlab` stay fast and never import a family's dependencies.
"""

from __future__ import annotations

import importlib

from genlab.errors import GenlabError, close_matches

MODELS: dict[str, tuple[str, str]] = {
    "vae": (
        "genlab.vae.vae:VAE",
        "Variational autoencoder (Kingma & Welling 2014): MLP or conv, Bernoulli or "
        "discretized likelihoods, beta-VAE, IWAE bound on log p(x)",
    ),
}


def model_class(name: str) -> type:
    """The class registered as `name`; unknown names are a GenlabError with close matches."""
    if name not in MODELS:
        raise GenlabError(
            f"unknown model {name!r}{close_matches(name, MODELS)}; `genlab list` shows them all"
        )
    target = MODELS[name][0]
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def list_models() -> list[tuple[str, str]]:
    return [(name, description) for name, (_, description) in MODELS.items()]
