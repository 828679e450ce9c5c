"""The contract every generative model keeps (see DESIGN.md).

Shared code (training loops, metrics, serving, CLI, tuning) sees only this contract and the
registry, never a specific model:

    class Model(nn.Module):
        Config: type                     # a dataclass; Model(config) builds the model
        config: Config
        def loss(self, batch) -> dict[str, Tensor]      # "loss" required; the rest is logged
        def sample(self, n, *, generator=None, **cond) -> Tensor
        # likelihood models also:
        def log_prob(self, x, *, generator=None) -> Tensor   # nats per example; exact or a bound

Optional parts, each found by `isinstance` against the protocols below, never by model name
(docs/architecture.md lists what a new family writes):
- Config fields the data fills (`data_shape`, `num_classes`; token data also `vocab_size` and
  `block_size`, the window length) come from the dataset's DataSpec through
  :func:`config_for_data` unless the user overrides them. A field whose metadata says
  `fit="at_least"` (a language model's block_size) only needs to be at least the data's value
  when a pretrained model is fine-tuned.
- Class attributes: `data_kinds` (the `DataSpec.kind`s it trains on, read by :func:`data_kinds`:
  `genlab train` refuses other data with one line before it makes the run folder);
  `presets` (HasPresets, with "gpu"); `train_defaults` (TrainConfig values it trains well with
  on a CPU, or `train_defaults_for(config)`, see :func:`train_defaults`); `trainer` (the module
  of its loop, a Trainer; "genlab.training.loop" when absent); `data_defaults` (dataset options
  it reads its data with unless told otherwise, or `data_defaults_for(config)`, see
  :func:`data_defaults`); `bound_name` (what `log_prob`
  returns: "exact" or e.g. "IWAE bound, k=256"); `sample_kind` (what `sample` returns, for a
  model with several data kinds, see :func:`sample_kind`).
- `prepare(x, *, generator=None)` (Preparable): map data in [0, 1] to the model's data space
  (e.g. a Bernoulli draw for binarized data). Evaluation calls it with a seeded generator so
  every evaluation sees the same binarized test set; `loss` calls it itself with the global RNG.
- `visualize(data, out_dir, *, generator)` (Visualizable): write the model's figures.
- `sample_latent(n, *, generator)` + `decode_latent(z, **cond)` (`LatentSampler`): all the
  randomness of `sample` drawn first, then a deterministic, row-by-row decoding, so that
  `sample(n, generator=g, **cond) == decode_latent(sample_latent(n, generator=g), **cond)` and
  decoding a concatenation of latents equals concatenating their decodings. The server batches
  the requests of such a model into one forward pass with each request's own seed.
- Adversarial models (GANs, see `AdversarialModel`) hold `generator` and `discriminator` and add
  `discriminator_loss` / `generator_loss` and `discriminator_won(d_loss)` (the loop's collapse
  test); their `loss` is what the loop reports on validation data; a `CriticHook` acts after
  every discriminator (critic) update.
- Sample options (HasSampleOptions), token generation (TokenGenerator), files kept beside the
  weights (RunAssets), export (Exporter), image-to-image (Translator, and Restorer for a
  translator that undoes a known degradation), starting from a run of another model
  (WarmStartable): see each protocol.
- Audio models (AudioModel) say their `sample_rate` and `quantizer` (a genlab.sound.Quantizer:
  the discrete values their likelihood is over) and give `conditional_log_prob(batch)`, the
  likelihood given the batch's labels and local features: the sample writer makes WAV files at
  that rate, the server answers audio/wav, and `genlab evaluate` reports bits per sample beside
  baselines over the same codes (genlab.metrics.audio).
- Sequence autoencoders (Reconstructor) give `reconstruction_accuracy(batch)`, which `genlab
  evaluate` reports.
- Agents (Agent, with a Memory and optionally a TargetNetwork) learn by acting in an environment
  (genlab.data.environments) in the RL loop (genlab.training.rl). A model whose loss is a
  policy-gradient surrogate (SurrogateObjective) names the logged term it raises instead.
- `facts(config)` (ModelFacts, a classmethod): numbers about a configured architecture worth
  showing (WaveNet's receptive field in samples and milliseconds); `genlab info RUN` lists them
  under "facts" without building the model, and metrics may read them (`receptive_field`: the
  context a baseline predictor gets).
Image models return samples as float (B, C, H, W) in [0, 1]; audio models float (B, 1, T)
amplitudes in [-1, 1].
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from torch import Tensor

from genlab.data.base import Dataset, DataSpec


@runtime_checkable
class GenerativeModel(Protocol):
    Config: ClassVar[type]
    config: Any

    def loss(self, batch: Any) -> dict[str, Tensor]: ...

    def sample(self, n: int, *, generator: Any = None, **cond: Any) -> Tensor: ...


@runtime_checkable
class LikelihoodModel(GenerativeModel, Protocol):
    def log_prob(self, x: Tensor, *, generator: Any = None) -> Tensor: ...


@runtime_checkable
class AdversarialModel(GenerativeModel, Protocol):
    generator: Any
    discriminator: Any

    def discriminator_loss(self, batch: Any, tricks: Any, step: int) -> dict[str, Tensor]: ...

    def generator_loss(self, batch: Any, tricks: Any, step: int) -> dict[str, Tensor]: ...

    def discriminator_won(self, d_loss: float) -> bool:
        """The adversarial loop's collapse test: True when the discriminator loss says the
        generator has lost for good (never for a Wasserstein critic, whose loss is unbounded)."""
        ...


DEFAULT_TRAINER = "genlab.training.loop"


def trainer_module(cls: type):
    """The loop module that trains models of class `cls` (its `trainer`, else the default)."""
    import importlib

    return importlib.import_module(getattr(cls, "trainer", DEFAULT_TRAINER))


def train_defaults(cls: type, config: Any) -> dict[str, Any]:
    """The TrainConfig values models of class `cls` train well with on a CPU: the class's
    `train_defaults`, or `train_defaults_for(config)` when they depend on the config (one class
    serving several registry variants, e.g. the LSTM trains with other settings than the
    vanilla RNN)."""
    per_config = getattr(cls, "train_defaults_for", None)
    if per_config is not None:
        return dict(per_config(config))
    return dict(getattr(cls, "train_defaults", {}))


def data_defaults(cls: type, config: Any) -> dict[str, Any]:
    """Dataset options a model of class `cls` reads its data with unless told otherwise: the
    class's `data_defaults`, or `data_defaults_for(config)` (a 16-bar MusicVAE reads 16-bar
    windows: {"bars": 16}); the lowest layer of a run's data options (genlab.settings)."""
    per_config = getattr(cls, "data_defaults_for", None)
    if per_config is not None:
        return dict(per_config(config))
    return dict(getattr(cls, "data_defaults", {}))


def data_kinds(cls: type) -> tuple[str, ...] | None:
    """The data kinds (`DataSpec.kind`) models of class `cls` train on; None: it does not say."""
    kinds = getattr(cls, "data_kinds", None)
    return None if kinds is None else tuple(kinds)


@runtime_checkable
class LatentSampler(Protocol):
    """sample = decode_latent(sample_latent(...)), decoded row by row (see the module docstring)."""

    def sample_latent(self, n: int, *, generator: Any = None) -> Tensor: ...

    def decode_latent(self, z: Tensor, **cond: Any) -> Tensor: ...


@runtime_checkable
class LatentGenerator(Protocol):
    """A generator with an explicit latent: z ~ p(z), images = generate(z) in [0, 1],
    deterministic (the PPL metric and `genlab interpolate` walk through z). Unlike a
    LatentSampler, its `sample` may draw more randomness than z (StyleGAN's noise)."""

    def sample_latent(self, n: int, *, generator: Any = None) -> Tensor: ...

    def generate(self, z: Tensor) -> Tensor: ...


@runtime_checkable
class StyleGenerator(Protocol):
    """A generator with an intermediate latent space: w = mapping(z), images = synthesis(w)."""

    def mapping(self, z: Tensor) -> Tensor: ...

    def synthesis(self, w: Tensor) -> Tensor: ...


@runtime_checkable
class Preparable(Protocol):
    def prepare(self, x: Tensor, *, generator: Any = None) -> Tensor: ...


@runtime_checkable
class Visualizable(Protocol):
    def visualize(self, data: Dataset, out_dir: Path, *, generator: Any) -> list[Path]: ...


@runtime_checkable
class TokenGenerator(Protocol):
    """A model that generates token by token (language models; later music, chat).

    `step(ids, cache)` takes (B, T) token ids and the cache of the tokens before them (None at
    the start) and returns (logits (B, T, vocab) of the next tokens, the new cache); `block_size`
    is the longest context it reads (None: unbounded, e.g. an RNN); `tokenizer` encodes prompts
    and decodes what it generates (genlab.tokenizers). genlab.generation drives it."""

    block_size: int | None
    tokenizer: Any

    def step(self, ids: Tensor, cache: Any = None) -> tuple[Tensor, Any]: ...


@runtime_checkable
class RunAssets(Protocol):
    """Files a model keeps beside its weights in a run folder and reads back itself: a tokenizer
    today, a MIDI vocabulary or a style image tomorrow. Shared code only calls these three:

    - `bind_data(spec)`: take what the model needs from the training data's spec (a new run);
    - `save_assets(folder)`: write them into the run folder (a new run, by the main process);
    - `load_assets(folder)`: read them back (genlab.load, serving, --init-from); a folder
      without them leaves the model unbound;
    - `data_options(folder)` (a classmethod): the data options a run must read its data with
      to fit the assets in `folder` (a text run: {"tokenizer": path}); a GenlabError when the
      folder lacks them. `--init-from SOURCE` and the resume of such a run use it."""

    def bind_data(self, spec: DataSpec) -> None: ...

    def save_assets(self, folder: Path) -> None: ...

    def load_assets(self, folder: Path) -> None: ...

    @classmethod
    def data_options(cls, folder: Path) -> dict[str, Any]: ...


@runtime_checkable
class Exporter(Protocol):
    """A model that writes itself in another toolkit's format (`genlab export RUN --format F`);
    `export_formats` lists the formats it knows."""

    export_formats: ClassVar[tuple[str, ...]]

    def export(self, folder: Path, format: str) -> None: ...


@runtime_checkable
class Translator(Protocol):
    """An image-to-image model (style transfer, super-resolution; later x-to-y in general).

    `translate(image, **inputs_and_options)` maps a batch of RGB images (B, 3, H, W) in [0, 1]
    to a batch of RGB outputs in [0, 1] (another size for super-resolution; a model that works
    on luma converts inside, so every caller hands it RGB); it takes any H and W the
    model supports (large inputs are the model's business: super-resolution tiles them).
    `translate_inputs` names its image inputs, the first one being `image` (AdaIN also takes a
    `style`, a keyword of translate: (B or 1, C, h, w)); `TranslateOptions` is a dataclass of
    `option(...)` fields like SampleOptions (AdaIN's alpha), possibly empty. `genlab stylize
    --model`, `genlab upscale` (through `genlab.api.translate`) and the server's image route
    are derived from these. Its `sample(n, generator=...)` translates seeded crops of held-out
    photographs (genlab.data.photos.demo_crops), so it keeps the core contract."""

    translate_inputs: ClassVar[tuple[str, ...]]
    TranslateOptions: ClassVar[type]

    def translate(self, image: Tensor, **inputs_and_options: Any) -> Tensor: ...


@runtime_checkable
class Restorer(Translator, Protocol):
    """A translator that undoes a known degradation (super-resolution undoes downsampling), so
    each clean image x gives a pair (degrade(x), x) and a classical baseline to beat:

    - `degrade(x)`: the model's input made from a clean image (antialiased bicubic
      downsampling by the scale);
    - `baseline(y)`: the classical answer for an input (bicubic upsampling);
    - `crop_border`: pixels left out at each edge when outputs are compared with x (the
      standard protocol crops `scale` pixels).
    `genlab evaluate` reports PSNR, SSIM and LPIPS of translate and of baseline against x."""

    crop_border: int

    def degrade(self, x: Tensor) -> Tensor: ...

    def baseline(self, y: Tensor) -> Tensor: ...


@runtime_checkable
class AudioModel(Protocol):
    """A model of sound: samples are float (B, 1, T) amplitudes in [-1, 1] at `sample_rate`
    samples per second.

    - `sample_rate`: samples per second of what it generates (the data's, filled into its
      config); the WAV writer and the server's wav encoder write at this rate;
    - `quantizer`: a genlab.sound.Quantizer (MU_LAW, LINEAR_16): the codes its likelihood is a
      distribution over, so that its bits per sample and the baselines' count the same events;
    - `conditional_log_prob(batch)`: log p(x | the batch's label and local features) in nats per
      example, (B,), of the quantized audio x of a data batch (x, (x, y) or (x, y, c)): what
      `genlab evaluate` turns into bits per sample (nats / (T ln 2))."""

    sample_rate: int
    quantizer: Any

    def conditional_log_prob(self, batch: Any) -> Tensor: ...


@runtime_checkable
class Reconstructor(Protocol):
    """An autoencoder of sequences judged by how much of its input it gets back (MusicVAE,
    Roberts et al. 2018, Table 1): `reconstruction_accuracy(batch)` -> {name: (B,) fractions of
    each example's elements decoded right}, e.g. "teacher_forced" and "sampled". `genlab
    evaluate` reports their means over the split beside the test loss and the likelihood."""

    def reconstruction_accuracy(self, batch: Any) -> dict[str, Tensor]: ...


@runtime_checkable
class ModelFacts(Protocol):
    """A model class that states facts about a configuration, e.g. a receptive field:
    `facts(config)` (a classmethod, cheap: nothing is built) -> {name: JSON value}. `genlab info`
    shows them as "facts"; `receptive_field` (in samples) is the context genlab.metrics.audio
    gives its linear predictor."""

    @classmethod
    def facts(cls, config: Any) -> dict[str, Any]: ...


@runtime_checkable
class WarmStartable(Protocol):
    """A model that starts from a trained run of another model, as SRGAN's generator starts
    from a trained SRResNet: `genlab train M --init-from RUN` where RUN holds a model named in
    `starts_from` (registry names) builds M from its own settings and data, then calls
    `warm_start(source)` with RUN's loaded model; a ValueError there (the architectures
    differ) is one line before the run folder is made. A run of M itself still initialises
    M whole, as for every model."""

    starts_from: ClassVar[tuple[str, ...]]

    def warm_start(self, source: Any) -> None: ...


@runtime_checkable
class HasSampleOptions(Protocol):
    """A model whose `sample` takes options beyond n and generator (a class label, StyleGAN's
    truncation, a flow's temperature). `SampleOptions` is a dataclass of them; each field's
    metadata may hold `help`, bounds `ge` / `le` and `keyword` (the sample() keyword when it
    differs from the option's name, e.g. label -> labels). The CLI's flags, the server's request
    schema and the page's form are all derived from it (see :func:`sample_options`)."""

    SampleOptions: ClassVar[type]


@runtime_checkable
class HasPresets(Protocol):
    """Named settings layers (`genlab train M --preset gpu`): preset name -> {"train": {...},
    "model_config": {...}, "data": {"options": {...}}}. Every registered model has "gpu"."""

    presets: ClassVar[dict[str, dict[str, Any]]]


@runtime_checkable
class CriticHook(Protocol):
    """An adversarial model that must act after each discriminator (critic) update, e.g. WGAN's
    weight clipping; the adversarial loop calls it."""

    def after_discriminator_step(self) -> None: ...


@runtime_checkable
class Memory(Protocol):
    """What an agent keeps of its experience and turns into the batches of its updates (a
    replay buffer, a rollout buffer of fixed length, a buffer of whole episodes): the RL loop
    (genlab.training.rl) adds every environment step and runs one optimizer step per batch."""

    def add(
        self,
        obs: Tensor,
        actions: Tensor,
        rewards: Tensor,
        next_obs: Tensor,
        terminated: Tensor,
        done: Tensor,
        extras: dict[str, Tensor],
    ) -> None:
        """One step of every environment, (N, ...) each: `next_obs` is the step's own outcome
        (the final observation where an episode ended), `terminated` where it ended for good
        (no bootstrapping), `done` where it ended for any reason (also a time limit)."""
        ...

    def batches(self, agent: Any, step: int, next_obs: Tensor, generator: Any) -> Any:
        """The batches (genlab.data.environments.Transitions) of the updates due after `step`
        environment steps, none when none is due; `next_obs` (N, D) are the observations the
        environments continue from (for bootstrapping a cut rollout)."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class Agent(Protocol):
    """A model that learns by acting in an environment (data kind "environment", trained by
    genlab.training.rl): `act` chooses the actions of N environments at once, returning what
    its memory keeps of the choice (log-probabilities, values); `memory(num_envs)` makes its
    Memory; `loss(batch)` is its objective on a batch of Transitions. `sample(n, generator=)`
    plays n episodes greedily (genlab.data.environments.Episode)."""

    def act(
        self, obs: Tensor, *, step: int, generator: Any = None, explore: bool = True
    ) -> tuple[Tensor, dict[str, Tensor]]: ...

    def memory(self, num_envs: int) -> Memory: ...

    def loss(self, batch: Any) -> dict[str, Tensor]: ...


@runtime_checkable
class TargetNetwork(Protocol):
    """An agent with a target network that follows its online network (DQN): the RL loop calls
    `after_update(updates)` after every optimizer step."""

    def after_update(self, updates: int) -> None: ...


@runtime_checkable
class SurrogateObjective(Protocol):
    """A model whose `loss` is a policy-gradient surrogate (pg-lm): its gradient estimates the
    gradient of what it optimises, but its value is not that objective and need not fall as
    the model improves; `optimises` names the logged term that should rise ("return")."""

    optimises: ClassVar[str]


@runtime_checkable
class Trainer(Protocol):
    """A loop module (a model's `trainer`): it owns its data and its loop.

    - `TrainConfig`: the dataclass of its settings (the `train` section of config.json);
    - `load_data(data_name, options, cfg) -> (train, val)`: what it trains on (datasets today,
      an environment for an RL loop);
    - `train(model, train_data, val_data, cfg, run, *, resume, progress, on_eval)`: trains and
      returns a summary; `on_eval(step, metrics)` is called with every evaluation it makes (the
      tuner reports and prunes through it), and may raise to stop the run."""

    TrainConfig: type

    def load_data(self, data_name: str, options: dict[str, Any], cfg: Any) -> tuple[Any, Any]: ...

    def train(
        self,
        model: Any,
        train_data: Any,
        val_data: Any,
        cfg: Any,
        run: Any,
        *,
        resume: bool = False,
        progress: bool = False,
        on_eval: Any = None,
    ) -> dict[str, Any]: ...


def sample_options(model: Any) -> type:
    """The SampleOptions dataclass of a model (or class); an empty dataclass when it has none."""
    return model.SampleOptions if isinstance(model, HasSampleOptions) else _NoOptions


def translate_options(model: Any) -> type:
    """The TranslateOptions dataclass of a Translator (or its class)."""
    return model.TranslateOptions


def option(
    default: Any,
    *,
    help: str,
    ge: float | None = None,
    le: float | None = None,
    keyword: str | None = None,
    choices: tuple[str, ...] | None = None,
    serve: bool = True,
) -> Any:
    """A field of a model's SampleOptions: `help` for the CLI, the HTTP schema and the page;
    bounds `ge`/`le` (numbers) or `choices` (strings) checked everywhere the option enters;
    `keyword`: the sample() keyword when it differs from the option's name (label -> labels);
    `serve=False`: the CLI only (e.g. a slow reference path), not offered by the server."""
    metadata = {"help": help, "ge": ge, "le": le, "keyword": keyword, "choices": choices}
    return dataclasses.field(default=default, metadata={**metadata, "serve": serve})


def option_fields(model: Any, *, served: bool = False, options: type | None = None):
    """The fields of a model's SampleOptions (or of `options`, e.g. translate_options(model)),
    only those the server offers with `served`."""
    fields = dataclasses.fields(sample_options(model) if options is None else options)
    return [f for f in fields if f.metadata.get("serve", True) or not served]


def sample_keywords(model: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Option values (by option name, None = not given) -> the keywords of `model.sample`,
    each checked against its field's bounds; ValueError naming the option otherwise."""
    return option_keywords(type(model).__name__, sample_options(model), values)


def translate_keywords(model: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Like sample_keywords, for the options of a Translator's `translate`."""
    return option_keywords(type(model).__name__, translate_options(model), values)


def option_keywords(owner: str, options: type, values: dict[str, Any]) -> dict[str, Any]:
    """Values by option name (None = not given) -> keywords, checked against `options`'s fields
    (their type, bounds and choices); a ValueError naming the option otherwise."""
    fields = {f.name: f for f in dataclasses.fields(options)}
    types = option_types(options)
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        if name not in fields:
            takes = ", ".join(fields) or "none"
            raise ValueError(f"{owner} does not take {name} (it takes: {takes})")
        value = _parsed(name, value, types[name])
        meta = fields[name].metadata
        if isinstance(value, float) and value != value:
            raise ValueError(f"{name} must be a number, got {value}")
        if meta.get("ge") is not None and value < meta["ge"]:
            raise ValueError(f"{name} must be a number >= {meta['ge']}, got {value}")
        if meta.get("le") is not None and value > meta["le"]:
            raise ValueError(f"{name} must be a number <= {meta['le']}, got {value}")
        if meta.get("choices") and value not in meta["choices"]:
            raise ValueError(f"{name} must be one of {', '.join(meta['choices'])}, got {value!r}")
        out[meta.get("keyword") or name] = value
    return out


def option_types(options: type) -> dict[str, type]:
    """Option name -> its value type (int, float, bool or str; None stripped from `X | None`)
    for an options dataclass."""
    hints = typing.get_type_hints(options)
    out = {}
    for name, hint in hints.items():
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        out[name] = args[0] if args else hint
    return out


def _parsed(name: str, value: Any, kind: type) -> Any:
    """A command-line string (or a JSON value) as the option's type; ValueError if it is not."""
    if isinstance(value, str) and kind is not str:
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"{name} must be true or false, got {value!r}")
            return value.lower() in ("true", "1")
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"{name} must be {kind.__name__}, got {value!r}") from None
    if isinstance(value, bool) and kind is not bool:
        raise ValueError(f"{name} must be {kind.__name__}, got {value!r}")
    if kind is float and isinstance(value, int):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)  # JSON's 3.0 is the integer 3
    if not isinstance(value, kind):
        raise ValueError(f"{name} must be {kind.__name__}, got {value!r}")
    return value


def sample_kind(model: Any) -> str:
    """The DataSpec kind of what `model.sample` returns ("image", "vector", "text", later
    "audio", ...), which picks the sample writer and the server's encoders: the model's
    `sample_kind` when it has one (a model that trains on several kinds reads it off its
    config), else its only data kind."""
    cls = model if isinstance(model, type) else type(model)
    kind = None if isinstance(model, type) else getattr(model, "sample_kind", None)
    if kind is not None:
        return kind
    kinds = data_kinds(cls)
    if not kinds or len(kinds) > 1:
        raise TypeError(f"{cls.__name__} must say its sample_kind")
    return kinds[0]


def class_labels(n: int, labels: Any, num_classes: int, device: Any = None) -> Tensor:
    """The class label of each of n samples, as a class-conditional model's `sample` takes its
    `labels` keyword: None -> 0, 1, ..., K-1, 0, ... cycling over the rows; one class -> n
    copies; a sequence -> itself (length n). A ValueError for anything else or a class outside
    0..K-1."""
    import torch

    k = num_classes
    if labels is None:
        return torch.arange(n, device=device) % k
    y = torch.as_tensor(labels, dtype=torch.long, device=device).reshape(-1)
    if y.numel() == 1:
        y = y.expand(n)
    wanted = f"labels must be one class or {n} classes in 0..{k - 1}"
    if y.numel() != n:
        raise ValueError(f"{wanted}: got {y.numel()} labels for {n} samples")
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"{wanted}, got {sorted(set(y.tolist()))[:5]}")
    return y


@dataclasses.dataclass(frozen=True)
class _NoOptions:
    """A model whose sample takes n and a generator only."""


C = TypeVar("C")


def config_for_data(config: C, spec: DataSpec) -> C:
    """`config` with the data-dependent fields it declares filled from the data's spec:
    `spec.config_values()` (data_shape and num_classes; for token sequences also vocab_size and
    block_size, the window length); values for fields the Config lacks are left out."""
    names = {f.name for f in dataclasses.fields(config)}
    values = spec.config_values()
    return dataclasses.replace(config, **{k: v for k, v in values.items() if k in names})
