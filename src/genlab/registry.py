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
    "pixelcnn": (
        "genlab.autoregressive.pixelcnn:PixelCNN",
        "PixelCNN (van den Oord et al. 2016): masked convolutions (A/B), residual blocks, "
        "Bernoulli or 256-way softmax outputs; exact log-likelihood",
    ),
    "gated-pixelcnn": (
        "genlab.autoregressive.gated_pixelcnn:GatedPixelCNN",
        "Gated PixelCNN (van den Oord et al. 2016): vertical and horizontal stacks (no blind "
        "spot), gated activations, class-conditional option; fast cached sampling",
    ),
    "pixelrnn-row": (
        "genlab.autoregressive.pixelrnn:RowPixelRNN",
        "PixelRNN with Row LSTM layers (van den Oord et al. 2016): row-by-row LSTM with 1-D "
        "input- and state-to-state convolutions, residual connections",
    ),
    "pixelrnn-diag": (
        "genlab.autoregressive.pixelrnn:DiagonalPixelRNN",
        "PixelRNN with Diagonal BiLSTM layers (van den Oord et al. 2016): skewed input, "
        "diagonal convolutions in both directions, residual connections",
    ),
    "glow": (
        "genlab.flows.glow:Glow",
        "Glow (Kingma & Dhariwal 2018): ActNorm, LU invertible 1x1 convolutions, affine "
        "couplings, multi-scale with learned priors; temperature sampling",
    ),
    "gpt": (
        "genlab.text.gpt:GPT",
        "GPT (Radford et al. 2019, nanoGPT's layout): decoder-only transformer, pre-LayerNorm, "
        "causal SDPA, learned or rotary positions, weight tying; KV-cached generation",
    ),
    "lstm": (
        "genlab.text.lstm:LSTM",
        "LSTM language model (Hochreiter & Schmidhuber 1997): multi-layer, dropout, weight "
        "tying; generation carries the (h, c) state",
    ),
    "gru": (
        "genlab.text.gru:GRU",
        "GRU language model (Cho et al. 2014): multi-layer, dropout, weight tying",
    ),
    "rnn": (
        "genlab.text.rnn:RNN",
        "Vanilla (tanh) RNN language model (Elman 1990): multi-layer, dropout, weight tying",
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
