"""The one explicit, lazy registry of names: models, sources, commands.

Grep here to find any model. Modules are imported only when a name is asked for, so
`genlab list`, `genlab --help` and `import genlab` stay fast and never import a family's
dependencies. A new family plugs in by adding its names here; shared code reaches it only
through these dicts and the protocols of genlab.contract.

- `MODELS`: name -> ("module:Class", one-line description[, Config defaults]). One class may
  serve several names that differ in Config values only (a *variant*: "lstm" is the RNN class
  with `cell="lstm"`); `default_config(name)` is the variant's Config, and `config_from(name,
  saved)` reads a saved config over the variant's defaults (so runs saved before a field existed
  still load as the variant they were).
- `SOURCES`: scheme -> "module:function": `genlab.load("SCHEME:REST")` calls
  `function(REST)` for a model that is not a genlab run folder (e.g. `hf:DIR`, a local Hugging
  Face folder); the function returns the model, its `--init-from` assets folder or None.
- `COMMANDS`: CLI verb -> ("module:function", one-line help): a family's own commands (e.g.
  `genlab generate`), imported only when run; `genlab --help` lists them from here.
"""

from __future__ import annotations

import importlib
from typing import Any

from genlab.errors import GenlabError, close_matches

MODELS: dict[str, tuple[str, str] | tuple[str, str, dict[str, Any]]] = {
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
        "genlab.autoregressive.pixelrnn:PixelRNN",
        "PixelRNN with Row LSTM layers (van den Oord et al. 2016): row-by-row LSTM with 1-D "
        "input- and state-to-state convolutions, residual connections",
        {"layer": "row"},
    ),
    "pixelrnn-diag": (
        "genlab.autoregressive.pixelrnn:PixelRNN",
        "PixelRNN with Diagonal BiLSTM layers (van den Oord et al. 2016): skewed input, "
        "diagonal convolutions in both directions, residual connections",
        {"layer": "diagonal"},
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
        "genlab.text.rnn:RNN",
        "LSTM language model (Hochreiter & Schmidhuber 1997): multi-layer, dropout, weight "
        "tying; generation carries the (h, c) state",
        {"cell": "lstm"},
    ),
    "gru": (
        "genlab.text.rnn:RNN",
        "GRU language model (Cho et al. 2014): multi-layer, dropout, weight tying",
        {"cell": "gru"},
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
    "srcnn": (
        "genlab.image2image.srcnn:SRCNN",
        "SRCNN (Dong et al. 2014): 9-1-5 convolutions on the bicubic-upscaled luma; "
        "super-resolution x2/x3/x4 (genlab upscale)",
    ),
    "espcn": (
        "genlab.image2image.espcn:ESPCN",
        "ESPCN (Shi et al. 2016): tanh convolutions at low resolution, sub-pixel convolution "
        "(pixel shuffle); super-resolution x2/x3/x4 on Y or RGB",
    ),
    "srresnet": (
        "genlab.image2image.srresnet:SRResNet",
        "SRResNet (Ledig et al. 2017): residual blocks with BN and PReLU, sub-pixel "
        "upsampling, trained by MSE; super-resolution x2/x3/x4",
    ),
    "srgan": (
        "genlab.image2image.srgan:SRGAN",
        "SRGAN (Ledig et al. 2017): SRResNet generator, VGG19 relu5_4 content loss + 1e-3 "
        "adversarial loss, trained by the adversarial loop",
    ),
    "fast-style": (
        "genlab.image2image.fast_style:FastStyle",
        "Fast style transfer (Johnson et al. 2016): a residual transformer network with "
        "instance norm trained for one style (-o style=NAME|PATH); genlab stylize --model",
    ),
    "adain": (
        "genlab.image2image.adain:AdaIN",
        "Arbitrary style transfer with AdaIN (Huang & Belongie 2017): VGG19 encoder, adaptive "
        "instance norm, mirrored decoder; any style, alpha trade-off, style interpolation",
    ),
    "wavenet": (
        "genlab.audio.wavenet:WaveNet",
        "WaveNet (van den Oord et al. 2016): causal dilated convolutions, gated units, mu-law "
        "softmax or logistic mixture, label and local conditioning; fast queued generation",
    ),
    "musicvae": (
        "genlab.music.musicvae:MusicVAE",
        "MusicVAE (Roberts et al. 2018), 2 bars: bidirectional LSTM encoder, LSTM decoder, "
        "free bits, beta annealing, scheduled sampling; slerp interpolation (genlab compose)",
    ),
    "musicvae-16bar": (
        "genlab.music.musicvae:MusicVAE",
        "MusicVAE, 16 bars, hierarchical: a conductor LSTM gives one embedding per bar, each "
        "bar decoded from its own (the paper's model); genlab compose",
        {"decoder": "hierarchical", "bars": 16, "data_shape": (256,), "free_bits": 48.0},
    ),
    "musicvae-16bar-flat": (
        "genlab.music.musicvae:MusicVAE",
        "MusicVAE, 16 bars, flat: one LSTM decoder over all 256 steps (the paper's baseline "
        "for the hierarchical decoder)",
        {"bars": 16, "data_shape": (256,), "free_bits": 48.0},
    ),
    "dqn": (
        "genlab.rl.dqn:DQN",
        "Deep Q-network (Mnih et al. 2015): replay buffer, target network (hard or Polyak), "
        "epsilon-greedy schedule, squared or Huber TD loss; Double DQN option (--data gym:NAME)",
    ),
    "double-dqn": (
        "genlab.rl.dqn:DQN",
        "Double DQN (van Hasselt et al. 2016): the online network picks the next action, the "
        "target network scores it",
        {"double": True},
    ),
    "reinforce": (
        "genlab.rl.reinforce:Reinforce",
        "REINFORCE (Williams 1992) with a learned value baseline: Monte-Carlo policy gradient "
        "over whole episodes (--data gym:NAME)",
    ),
    "ppo": (
        "genlab.rl.ppo:PPO",
        "Proximal policy optimisation (Schulman et al. 2017): clipped objective, GAE, "
        "actor-critic over parallel environments (--data gym:NAME)",
    ),
    "pg-lm": (
        "genlab.rl.pg_lm:PolicyGradientLM",
        "Policy-gradient fine-tuning of a language model run (--init-from) toward a reward "
        "(-o reward=keyword|line_length|rhyme) with a KL penalty to it: RLOO",
    ),
}


SOURCES: dict[str, str] = {
    "hf": "genlab.text.hf:load_source",
}

COMMANDS: dict[str, tuple[str, str]] = {
    "generate": (
        "genlab.text.commands:generate",
        "Stream text from a language model run after a prompt (sampling controls, stop strings).",
    ),
    "export": (
        "genlab.text.commands:export",
        "Write a run's model in another toolkit's format (e.g. a Hugging Face GPT-2 folder).",
    ),
    "upscale": (
        "genlab.image2image.commands:upscale",
        "Upscale an image with a super-resolution run (SRCNN, ESPCN, SRResNet, SRGAN), tiled.",
    ),
    "stylize": (
        "genlab.image2image.commands:stylize",
        "Neural style transfer: optimise an image (Gatys et al.) or run a fast-style/AdaIN run.",
    ),
    "compose": (
        "genlab.music.commands:compose",
        "Compose music with a MusicVAE or a language model on music: MIDI, WAV, piano roll; "
        "--primer, --interpolate.",
    ),
}


def resolve(target: str) -> Any:
    """The object a "module:attribute" string names (the module imported now)."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _entry(name: str) -> tuple:
    if name not in MODELS:
        raise GenlabError(
            f"unknown model {name!r}{close_matches(name, MODELS)}; `genlab list` shows them all"
        )
    return MODELS[name]


def model_class(name: str) -> type:
    """The class registered as `name`; unknown names are a GenlabError with close matches."""
    return resolve(_entry(name)[0])


def variant_defaults(name: str) -> dict[str, Any]:
    """The Config values that make `name` the variant it is ({} for a class's own name)."""
    entry = _entry(name)
    return dict(entry[2]) if len(entry) > 2 else {}


def default_config(name: str) -> Any:
    """The Config a new `name` model starts from: the class's defaults, then the variant's."""
    return model_class(name).Config(**variant_defaults(name))


def config_from(name: str, values: dict[str, Any], *, prefix: str = "model_config.") -> Any:
    """A saved config dict (config.json's model_config, a preset's) over `name`'s defaults."""
    from genlab.config import from_dict

    return from_dict(model_class(name).Config, {**variant_defaults(name), **values}, prefix=prefix)


def variants_of(cls: type) -> dict[str, dict[str, Any]]:
    """Registered name -> variant defaults, for every name served by `cls`."""
    target = f"{cls.__module__}:{cls.__qualname__}"
    return {name: variant_defaults(name) for name, entry in MODELS.items() if entry[0] == target}


def list_models() -> list[tuple[str, str]]:
    return [(name, entry[1]) for name, entry in MODELS.items()]
