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
    "dcgan": (
        "genlab.gan.dcgan:DCGAN",
        "DCGAN (Radford et al. 2016): strided-conv discriminator, transposed-conv generator, "
        "batch norm, the paper's init; MLPs on 2-D toy data",
    ),
    "wgan": (
        "genlab.gan.wgan:WGAN",
        "Wasserstein GAN (Arjovsky et al. 2017): critic with weight clipping, RMSprop, n_critic",
    ),
    "wgan-gp": (
        "genlab.gan.wgan_gp:WGANGP",
        "WGAN-GP (Gulrajani et al. 2017): gradient penalty on uniform interpolates, layer-norm "
        "critic, Adam(0, 0.9)",
    ),
    "cgan": (
        "genlab.gan.cgan:CGAN",
        "Conditional GAN (Mirza & Osindero 2014) with a projection (Miyato & Koyama 2018) or "
        "concatenation discriminator; sample(n, labels=...)",
    ),
    "realnvp": (
        "genlab.flows.realnvp:RealNVP",
        "RealNVP (Dinh et al. 2017): affine couplings, checkerboard/channel masks, multi-scale "
        "with factor-out; exact log-likelihood (dequantized for images)",
    ),
    "stylegan": (
        "genlab.gan.stylegan:StyleGAN",
        "StyleGAN (Karras et al. 2019/2020) at 32x32: mapping network, modulated convolutions, "
        "noise, style mixing, truncation, R1 and path-length regularization",
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
