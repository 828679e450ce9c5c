"""The Python API behind the CLI: train a run, load it, sample from it, evaluate it.

    import genlab
    run_dir, summary = genlab.train_run("vae", "mnist-5k", "runs/vae", overrides={"train.steps": "500"})
    model = genlab.load("runs/vae")            # ready to sample, in eval mode
    images = model.sample(16, generator=torch.Generator().manual_seed(0))
    genlab.evaluate("runs/vae")                # eval.json + figures in the run directory
    text = "".join(genlab.generate("runs/gpt", "ROMEO:", max_new_tokens=100))  # genlab.generation

Orchestration only: settings come from genlab.settings, models and sources from the registry,
and everything a model may or may not do is a Protocol of genlab.contract. No model or family
is named here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import functools
import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genlab import __version__
from genlab.config import apply_overrides, from_dict, to_dict
from genlab.contract import (
    Exporter,
    LatentGenerator,
    ModelFacts,
    RunAssets,
    StyleGenerator,
    Translator,
    Visualizable,
    WarmStartable,
    config_for_data,
    data_kinds,
    option_fields,
    sample_keywords,
    sample_kind,
    trainer_module,
    translate_keywords,
)
from genlab.errors import GenlabError
from genlab.fileio import atomic_write_text
from genlab.registry import SOURCES, config_from, model_class, resolve
from genlab.settings import Settings
from genlab.settings import resolve as resolve_settings
from genlab.training.checkpoint import EMA_WEIGHTS, WEIGHTS, RunDir, load_weights
from genlab.training.loop import select_device


# --- helpers --------------------------------------------------------------------------------
def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def build_model(name: str, config: Any) -> nn.Module:
    cls = model_class(name)
    try:
        return cls(config)
    except (ValueError, AssertionError) as e:
        raise GenlabError(f"cannot build {name} with this config: {e}") from None


def source_scheme(source: str | Path) -> tuple[str, str] | None:
    """(scheme, rest) of a `SCHEME:REST` model source registered in registry.SOURCES (e.g.
    `hf:DIR`, a local Hugging Face folder), else None (a genlab run folder)."""
    scheme, colon, rest = str(source).partition(":")
    return (scheme, rest) if colon and scheme in SOURCES else None


def source_folder(source: str | Path) -> Path:
    """The local folder a source reads: the run folder, or the folder of `SCHEME:DIR`."""
    scheme = source_scheme(source)
    return Path(source) if scheme is None else Path(scheme[1]).expanduser()


# --- train ----------------------------------------------------------------------------------
def train_run(
    model_name: str,
    data_name: str | None,
    out: str | Path,
    *,
    overrides: dict[str, str] | None = None,
    config_file: str | Path | None = None,
    steps: int | None = None,
    seed: int | None = None,
    resume: bool = False,
    progress: bool = True,
    preset: str | None = None,
    init_from: str | Path | None = None,
    fold: tuple[int, int] | None = None,
    on_eval: Any = None,
) -> tuple[Path, dict[str, float]]:
    """Train (or resume) a run; returns the run directory and the final metrics.

    Settings are layered (genlab.settings), later wins: the model's defaults and
    `train_defaults`, the named `preset` (e.g. "gpu"), the config file, then `overrides` and
    steps/seed. The model's trainer module (contract.Trainer) loads the data and trains.

    `init_from` starts from a trained model instead of random weights (fine-tuning): a genlab
    run directory or a registered source such as `hf:DIR` (a local Hugging Face GPT-2 folder).
    Its architecture and its run assets (contract.RunAssets, e.g. a tokenizer) are kept; `-o`
    may still change options that leave the weights' shapes alone (e.g. dropout), and the data
    must fit the model.

    `fold=(k, i)`: k-fold cross-validation on the training split: fold i (of a seeded shuffle)
    is the validation data, the other k - 1 folds train (genlab.data.base.kfold).
    `on_eval(step, metrics)` is called by the trainer with every evaluation (genlab.tune
    reports and prunes through it).

    Everything that can be refused is checked before the run folder is made, including whether
    the model can train on the data at all (its `data_kinds`, then its loss on two training
    examples), so a refused command leaves no folder behind. One process trains into a run at
    a time: it holds the run's lock (RunDir.lock) until training ends, and a second command on
    the same run is refused with the holder's pid.

    `resume=True` on a run killed before its first checkpoint starts it again from step 0 with
    its saved config (its metrics.csv and event files are cleared): that is what the refusal to
    reuse a non-empty folder tells the user to do, and the config is the one they chose. A
    resume with nothing left to train returns the last logged metrics.
    """
    from genlab.training.distributed import launched_rank, leave_launched_group

    run = RunDir(out)
    overrides = dict(overrides or {})
    main = launched_rank() == 0  # under torchrun only rank 0 writes files and holds the lock
    with contextlib.ExitStack() as held:
        if resume:
            _check_resume_options(overrides, config_file, seed, preset, init_from, fold)
            run.read_config()  # a run folder, checked before a lock file is made in it
            if main:
                held.enter_context(run.lock())
            setup = _resumed_setup(run, model_name, data_name, steps, overrides)
        else:
            settings = resolve_settings(
                model_name, preset=preset, config_file=config_file, overrides=overrides,
                steps=steps, seed=seed,
            )  # fmt: skip
            setup = _new_setup(settings, data_name, init_from, fold)
        select_device(setup.train_cfg.device)  # a device this machine lacks: refused here too
        train_data, val_data = _training_data(setup)
        restart = resume and run.latest_checkpoint() is None  # killed before its first one
        model = _start_model(setup, train_data, fresh=not resume or restart)
        if main and not resume:
            held.enter_context(run.create_locked(_run_config(setup, preset)))
        if main and restart:
            from genlab.training.logging import clear_logs

            clear_logs(run.path)
        if main and resume and steps is not None:  # written with the next checkpoint
            run.pending_config = {**setup.saved, "train": {**setup.saved["train"], "steps": steps}}
        if isinstance(model, RunAssets):  # e.g. the tokenizer: bound to the data, saved once
            model.bind_data(train_data.spec)
            if main and (not resume or restart):
                model.save_assets(run.path)
        summary = setup.loop.train(
            model, train_data, val_data, setup.train_cfg, run,
            resume=resume and not restart, progress=progress, on_eval=on_eval,
        )  # fmt: skip
    leave_launched_group()  # under torchrun: every rank leaves the group the loop joined
    return run.path, summary


@dataclasses.dataclass
class _Setup:
    """What a training command resolved before its data is loaded and its model is built."""

    name: str
    cls: type
    loop: Any  # the trainer module (contract.Trainer)
    train_cfg: Any
    data_name: str
    data_options: dict[str, Any]
    fold: tuple[int, int] | None = None
    model_config: Any = None  # a resumed run's; a new run's once the data is known
    saved: dict[str, Any] | None = None  # a resumed run's config.json
    settings: Settings | None = None  # a new run's layered settings
    init_from: str | Path | None = None
    initial: tuple[dict[str, Any], dict] | None = None  # --init-from's (config, weights)
    warm_source: nn.Module | None = None  # --init-from's model of another kind (WarmStartable)


def _check_resume_options(overrides, config_file, seed, preset, init_from, fold) -> None:
    if (
        set(overrides) - {"train.device"}
        or config_file is not None
        or seed is not None
        or preset is not None
        or init_from is not None
        or fold is not None
    ):
        raise GenlabError(
            "--resume continues a run as configured; only --steps and --device may change"
        )


def _resumed_setup(
    run: RunDir, model_name: str, data_name: str | None, steps: int | None, overrides: dict
) -> _Setup:
    """The settings of the run in `run` (its config.json), with a new `steps` and device."""
    saved = run.read_config()
    if saved["model"] != model_name or (data_name and saved["data"]["name"] != data_name):
        raise GenlabError(
            f"{run.path} holds a {saved['model']} run on {saved['data']['name']}, "
            f"not {model_name} on {data_name}"
        )
    cls = model_class(saved["model"])
    loop = trainer_module(cls)
    train_cfg = from_dict(loop.TrainConfig, saved["train"], prefix="train.")
    if steps is not None:
        train_cfg = dataclasses.replace(train_cfg, steps=steps)
    if "train.device" in overrides:  # where to run is this machine's choice, not the run's
        train_cfg = dataclasses.replace(train_cfg, device=overrides["train.device"])
    data_options = saved["data"]["options"]
    if saved.get("init_from") and isinstance(cls, RunAssets):
        # the data was read with the source's assets: the run keeps its own copy of them
        data_options = {**data_options, **cls.data_options(run.path)}
    setup = _Setup(saved["model"], cls, loop, train_cfg, saved["data"]["name"], data_options)
    setup.saved = saved
    setup.fold = tuple(saved["fold"]) if saved.get("fold") else None
    setup.model_config = config_from(saved["model"], saved["model_config"])
    if saved.get("init_from") and run.latest_checkpoint() is None:  # restarts from its source
        setup.init_from = saved["init_from"]
        setup.initial = _init_source(setup.init_from, model_name)[:2]
    return setup


def _new_setup(
    settings: Settings,
    data_name: str | None,
    init_from: str | Path | None,
    fold: tuple[int, int] | None,
) -> _Setup:
    """A new run's setup from its layered settings (and --init-from's source)."""
    if not data_name:
        raise GenlabError("--data is required (e.g. --data mnist-5k; `genlab list` shows all)")
    setup = _Setup(
        settings.name, settings.cls, settings.loop, settings.train, data_name,
        dict(settings.data_options), fold=fold, settings=settings,
    )  # fmt: skip
    if init_from is not None:
        warm_source = _warm_source(init_from, settings)
        if warm_source is not None:  # its own config; the source's weights go in by warm_start
            setup.init_from, setup.warm_source = init_from, warm_source
            return setup
        if settings.file_cfg.get("model_config"):
            raise GenlabError(
                f"--init-from takes the architecture from {init_from}; a preset or config "
                "file may not set model_config"
            )
        init_config, initial, forced = _init_source(init_from, settings.name)
        clash = sorted(set(forced) & set(setup.data_options))
        if clash:
            raise GenlabError(
                f"--init-from reads the data as {init_from} does; leave out "
                + " and ".join(f"data.{key}" for key in clash)
            )
        setup.data_options.update(forced)
        setup.init_from, setup.initial = init_from, (init_config, initial)
    return setup


def _training_data(setup: _Setup):
    """(train, validation) data from the trainer; with a fold, both cut from the training split."""
    train_data, val_data = setup.loop.load_data(
        setup.data_name, setup.data_options, setup.train_cfg
    )
    if setup.fold is not None:
        from genlab.data.base import kfold

        k, i = setup.fold
        try:
            train_data, val_data = kfold(train_data, k, i, seed=setup.train_cfg.seed)
        except ValueError as e:
            raise GenlabError(str(e)) from None
    return train_data, val_data


def _start_model(setup: _Setup, train_data: Any, *, fresh: bool) -> nn.Module:
    """The model a run trains: a resumed run's as configured (its checkpoint loads later), a
    new (or restarted) run's checked against the data first."""
    if not fresh:
        return build_model(setup.name, setup.model_config)
    _check_data_kind(setup, train_data.spec)
    if setup.settings is not None:
        setup.model_config = _new_model_config(setup, train_data.spec)
    return _model_for_data(setup, train_data)


def _new_model_config(setup: _Setup, spec: Any) -> Any:
    """The model config of a new run: the data's fields, the file's, then -o (or, with
    --init-from, the source's architecture checked against the data)."""
    assert setup.settings is not None
    if setup.initial is None:
        return setup.settings.model_config_for(spec)
    init_config, initial = setup.initial
    model_cfg = config_from(setup.name, init_config)
    model_cfg = apply_overrides(model_cfg, setup.settings.model_over)
    model_cfg = _fit_to_data(model_cfg, spec, setup.init_from)
    _check_shapes(setup.name, model_cfg, initial, setup.init_from)
    return model_cfg


def _check_data_kind(setup: _Setup, spec: Any) -> None:
    """A GenlabError unless the model declares the data's kind (contract.data_kinds); checked
    before the data fills the model's config, whose own complaint would be less direct."""
    kinds = data_kinds(setup.cls)
    if kinds is not None and spec.kind not in kinds:
        raise GenlabError(
            f"{setup.name} cannot train on {setup.data_name}: it models "
            f"{' or '.join(kinds)} data, and {setup.data_name} is {spec.kind} data"
        )


def _model_for_data(setup: _Setup, train_data: Any) -> nn.Module:
    """The model a run starts from at step 0, checked against the data: a GenlabError when
    its loss fails on two training examples (wrong dtype, shape, vocabulary, ...)."""
    torch.manual_seed(setup.train_cfg.seed)  # the initial weights depend on the seed only
    model = build_model(setup.name, setup.model_config)
    if setup.initial is not None:
        try:
            model.load_state_dict(setup.initial[1], strict=True)
        except RuntimeError as e:
            raise GenlabError(
                f"the weights of {setup.init_from} do not fit this config: {str(e).splitlines()[0]}"
            ) from None
    if setup.warm_source is not None:
        try:
            model.warm_start(setup.warm_source)
        except ValueError as e:
            raise GenlabError(f"cannot start {setup.name} from {setup.init_from}: {e}") from None
    _check_loss_on(model, f"{setup.name} cannot train on {setup.data_name}", train_data)
    return model


def _check_loss_on(model: nn.Module, refusal: str, data: Any) -> None:
    """`model.loss` on two training examples, so that a model that cannot read the data is one
    line before the run folder is made, not a traceback after it. Eval mode (no data-dependent
    initialisation, no running statistics), no gradients, a forked RNG: the model and the
    seed's random stream are left as they were."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            model.loss(data.batch(torch.arange(min(2, len(data)))))
    except GenlabError:
        raise
    except Exception as e:  # any failure here means this model cannot read this data
        first = str(e).strip().splitlines()[0] if str(e).strip() else "(no message)"
        raise GenlabError(f"{refusal}: {type(e).__name__}: {first}") from None
    finally:
        model.train(was_training)


def _run_config(setup: _Setup, preset: str | None) -> dict[str, Any]:
    """config.json of a new run."""
    return {
        "model": setup.name,
        "preset": preset,
        "init_from": None if setup.init_from is None else str(setup.init_from),
        "fold": None if setup.fold is None else list(setup.fold),
        "model_config": to_dict(setup.model_config),
        "data": {"name": setup.data_name, "options": setup.data_options},
        "train": to_dict(setup.train_cfg),
        "genlab_version": __version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _warm_source(source: str | Path, settings: Settings) -> nn.Module | None:
    """--init-from's model when SOURCE is a run of another model that the trained model starts
    from (contract.WarmStartable: SRGAN from an SRResNet run); None otherwise."""
    if source_scheme(source) is not None or not isinstance(settings.cls, WarmStartable):
        return None
    saved = RunDir(source).read_config()["model"]
    if saved == settings.name or saved not in settings.cls.starts_from:
        return None
    return load(source)


def _init_source(source: str | Path, model_name: str) -> tuple[dict[str, Any], dict, dict]:
    """What `--init-from SOURCE` starts a run from: (the model config as a dict, the weights,
    the data options its run assets need, e.g. the tokenizer). SOURCE is a genlab run
    directory (its last checkpoint, EMA weights when kept) or a registered `SCHEME:REST`."""
    if source_scheme(source) is None:
        saved = RunDir(source).read_config()
        if saved["model"] != model_name:
            cls = model_class(model_name)
            starts = cls.starts_from if isinstance(cls, WarmStartable) else ()
            also = "".join(f" or a {name}" for name in starts)
            raise GenlabError(
                f"{source} holds a {saved['model']} run; {model_name} starts from a "
                f"{model_name}{also} run"
            )
    model = load(source)
    if not isinstance(model, model_class(model_name)):
        raise GenlabError(f"{source} holds a {type(model).__name__}, not a {model_name}")
    forced = {}
    if isinstance(model, RunAssets):  # the data must be read as the source's assets read it
        forced = type(model).data_options(source_folder(source))
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return to_dict(model.config), state, forced


def _fit_to_data(config: Any, spec: Any, source: str | Path) -> Any:
    """`config` (a pretrained model's) checked against the data; GenlabError naming what differs.

    A Config field whose metadata says `fit="at_least"` (e.g. a language model's block_size,
    the longest window it reads) only needs to be at least the data's value."""
    fitted = config_for_data(config, spec)
    differ = []
    for f in dataclasses.fields(config):
        ours, needed = getattr(config, f.name), getattr(fitted, f.name)
        if ours == needed:
            continue
        if f.metadata.get("fit") == "at_least":
            if needed > ours:
                raise GenlabError(
                    f"data.{f.name} {needed} is longer than {source}'s {f.name} {ours}"
                )
            continue
        differ.append(f"{f.name} {ours!r} (the data needs {needed!r})")
    if differ:
        raise GenlabError(f"the data does not fit the model of {source}: {'; '.join(differ)}")
    return config


def _check_shapes(model_name: str, config: Any, state: dict, source: str | Path) -> None:
    """GenlabError unless `state` fits a model of `config` (checked on the meta device, before
    the run folder is made)."""
    with torch.device("meta"):
        expected = build_model(model_name, config).state_dict()
    for name, value in expected.items():
        if name not in state or state[name].shape != value.shape:
            got = tuple(state[name].shape) if name in state else "nothing"
            raise GenlabError(
                f"the weights of {source} do not fit this config: {name} needs "
                f"{tuple(value.shape)}, the source has {got}"
            )


# --- load, sample, evaluate -----------------------------------------------------------------
def load(run_dir: str | Path, *, checkpoint: str = "last", ema: bool = True, device: str = "cpu"):
    """The model of a run, weights loaded strictly (EMA weights when the run kept them), with
    its run assets (contract.RunAssets, e.g. a tokenizer).

    A registered `SCHEME:REST` source (registry.SOURCES) loads through its function instead:
    `hf:DIR` is a local Hugging Face GPT-2 folder read as a genlab GPT, with the folder's
    tokenizer when it has one. `device`: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or
    mps; one that is unknown or not on this machine is a GenlabError, raised before anything is
    read."""
    target = select_device(device)
    scheme = source_scheme(run_dir)
    if scheme is not None:
        model = resolve(SOURCES[scheme[0]])(scheme[1])
        folder = source_folder(run_dir)
    else:
        run = RunDir(run_dir)
        saved = run.read_config()
        model = build_model(saved["model"], config_from(saved["model"], saved["model_config"]))
        folder = run.weights_folder(checkpoint)
        path = (
            folder / EMA_WEIGHTS if ema and (folder / EMA_WEIGHTS).is_file() else folder / WEIGHTS
        )
        try:
            model.load_state_dict(load_weights(path), strict=True)
        except RuntimeError as e:
            raise GenlabError(
                f"weights in {path} do not match the config: {str(e).splitlines()[0]}"
            ) from None
        folder = run.path
    if isinstance(model, RunAssets):
        model.load_assets(folder)
    return model.to(target).eval()


def sample(
    run_dir: str | Path,
    n: int,
    out: str | Path,
    *,
    seed: int = 0,
    checkpoint: str = "last",
    device: str = "cpu",
    **options: Any,
) -> Path:
    """Draw n samples into a file written for their modality (contract.sample_kind: an image
    grid, a scatter plot, text, ...). `options` are the model's sample options
    (contract.HasSampleOptions, e.g. label, truncation, temperature); None means not given, and
    an option the model does not take is an error. `device` is where the model runs (see
    `load`)."""
    from genlab.writers import write_samples

    if n < 1:
        raise GenlabError(f"--n must be at least 1, got {n}")
    out = Path(out)
    check_writable(out)
    model = load(run_dir, checkpoint=checkpoint, device=device)
    cond = _sample_keywords(model, options)
    where = next(model.parameters()).device  # the resolved device
    with torch.no_grad():
        try:
            samples = model.sample(
                n, generator=torch.Generator(device=where).manual_seed(seed), **cond
            )
        except ValueError as e:
            raise GenlabError(f"cannot sample: {e}") from None
    try:
        return write_samples(samples, out, kind=sample_kind(model), model=model)
    except OSError as e:
        raise GenlabError(f"cannot write {out}: {e.strerror}") from None


def _sample_keywords(model: nn.Module, options: dict[str, Any]) -> dict[str, Any]:
    """Sample options given by name -> model.sample's keywords; a one-line GenlabError naming
    the flag for an option the model does not take or a value out of its bounds."""
    names = {f.name for f in option_fields(model)}
    for name, value in options.items():
        if value is not None and name not in names:
            flag = "--" + name.replace("_", "-")
            raise GenlabError(f"{type(model).__name__} does not take {flag}")
    try:
        return sample_keywords(model, options)
    except ValueError as e:
        raise GenlabError(f"--{e}") from None


def interpolate(
    run_dir: str | Path,
    out: str | Path,
    *,
    walks: int = 8,
    keyframes: int = 4,
    frames: int = 12,
    seed: int = 0,
    checkpoint: str = "last",
    duration_ms: int = 80,
    device: str = "cpu",
) -> Path:
    """A latent walk as a looping GIF: `walks` images side by side, each moving through
    `keyframes` random latents (and back to the first), `frames` frames per segment.

    Models with a mapping network (StyleGenerator) walk linearly in W; other latent generators
    (LatentGenerator) walk along great circles in Z (slerp), as in the PPL protocol. `device`
    is where the model runs (see `load`).
    """
    from genlab.imaging import save_gif
    from genlab.metrics.ppl import lerp, slerp

    for name, value, low in (
        ("walks", walks, 1),
        ("keyframes", keyframes, 2),
        ("frames", frames, 1),
    ):
        if value < low:
            raise GenlabError(f"--{name} must be at least {low}, got {value}")
    out = Path(out)
    if out.suffix.lower() != ".gif":
        raise GenlabError(f"--out must name a .gif file, got {out}")
    check_writable(out)
    model = load(run_dir, checkpoint=checkpoint, device=device)
    if not isinstance(model, LatentGenerator):
        raise GenlabError(f"{type(model).__name__} has no latent space to walk through")
    if sample_kind(model) != "image":  # the frames of a GIF
        raise GenlabError(f"{type(model).__name__} does not generate images")
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    with torch.no_grad():
        keys = [model.sample_latent(walks, generator=generator) for _ in range(keyframes)]
        if isinstance(model, StyleGenerator):
            keys, mix, draw = [model.mapping(z) for z in keys], lerp, model.synthesis
        else:
            mix, draw = slerp, model.generate
        pictures = []
        for a, b in zip(keys, keys[1:] + keys[:1], strict=True):
            for i in range(frames):
                t = torch.full((walks,), i / frames, device=a.device, dtype=a.dtype)
                pictures.append(draw(mix(a, b, t)))  # (walks, C, H, W)
    try:
        return save_gif(pictures, out, duration_ms=duration_ms)
    except OSError as e:
        raise GenlabError(f"cannot write {out}: {e.strerror}") from None


def translate(
    run_dir: str | Path,
    image: str | Path,
    out: str | Path,
    *,
    inputs: dict[str, str | Path] | None = None,
    checkpoint: str = "last",
    device: str = "cpu",
    max_pixels: int | None = None,
    **options: Any,
) -> Path:
    """Translate one image file with an image-to-image run (contract.Translator: style
    transfer, super-resolution) and write the result to `out` as a PNG.

    `inputs` are the model's other image inputs by name (e.g. {"style": "starry.jpg"});
    `options` its TranslateOptions by name (None = not given), checked against their bounds.
    Every image is read at full size (genlab.data.photos.read_image: anything unreadable is one
    line); `max_pixels` refuses larger images before decoding them."""
    from genlab.data.photos import read_image
    from genlab.imaging import save_image

    out = Path(out)
    check_writable(out)
    model = load(run_dir, checkpoint=checkpoint, device=device)
    if not isinstance(model, Translator):
        raise GenlabError(f"{run_dir}: a {type(model).__name__} run does not translate images")
    keywords = _translate_keywords(model, inputs or {}, options)
    where = next(model.parameters()).device
    x = read_image(image, channels=3, max_pixels=max_pixels).unsqueeze(0).to(where)
    for name, path in (inputs or {}).items():
        keywords[name] = read_image(path, channels=3, max_pixels=max_pixels)[None].to(where)
    with torch.no_grad():
        try:
            y = model.translate(x, **keywords)
        except ValueError as e:
            raise GenlabError(f"cannot translate {image}: {e}") from None
    try:
        return save_image(y[0].float().cpu(), out)
    except OSError as e:
        raise GenlabError(f"cannot write {out}: {e.strerror}") from None


def _translate_keywords(model: Any, inputs: dict[str, Any], options: dict[str, Any]) -> dict:
    """Image inputs and options given by name -> translate's keywords, or a one-line error."""
    extra = [name for name in model.translate_inputs if name != "image"]
    for name in inputs:
        if name not in extra:
            takes = ", ".join(f"--{n}" for n in extra) or "no other image"
            raise GenlabError(f"{type(model).__name__} does not take --{name} (it takes {takes})")
    try:
        return translate_keywords(model, options)
    except ValueError as e:
        raise GenlabError(f"--{e}") from None


def check_writable(out: Path) -> None:
    folder = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise GenlabError(f"output path {out} is a folder; give a file name such as grid.png")
    if not folder.exists():
        try:
            folder.mkdir(parents=True)
        except OSError as e:
            raise GenlabError(f"cannot create output folder {folder}: {e.strerror}") from None
    if not folder.is_dir():
        raise GenlabError(f"output folder {folder} is not a folder")
    if not os.access(folder, os.W_OK):
        raise GenlabError(f"output folder {folder} is not writable")


def evaluate(
    run_dir: str | Path,
    *,
    split: str = "test",
    checkpoint: str = "last",
    seed: int = 0,
    batch_size: int = 100,
    figures: bool = True,
    metrics: str | list[str] | None = None,
    n: int = 10_000,
    features: str = "inception",
    weights: str | Path | None = None,
    download: bool = False,
    ppl_space: str = "z",
    protocol: str | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Test metrics of a run (written to RUN/eval.json) and the model's figures (RUN/figures).

    Without `metrics`: the test loss and the likelihood (NLL, bits/dim). With `metrics` (e.g.
    "fid,kid,is,pr,ppl"): those sample metrics from `n` samples on the `features` set
    ("inception" or "digits", see genlab.metrics.evaluate), merged into an existing eval.json;
    `protocol` is the Inception preprocessing ("tf", the default, or "pytorch-fid").
    `device` is where the model (and the metrics' feature networks) run (see `load`).
    """
    from genlab.data import load_dataset
    from genlab.metrics.standard import standard_metrics

    if metrics is not None:
        from genlab.metrics.evaluate import check_protocol, parse_metrics

        names = parse_metrics(metrics if isinstance(metrics, str) else ",".join(metrics))
        check_protocol(features, protocol)  # and the feature set
        if not names:
            raise GenlabError("--metrics needs at least one of fid, kid, is, pr, ppl")

    run = RunDir(run_dir)
    saved = run.read_config()
    model = load(run.path, checkpoint=checkpoint, device=device)
    data = load_dataset(saved["data"]["name"], split, **saved["data"]["options"])
    result: dict[str, Any] = {
        "model": saved["model"],
        "data": saved["data"]["name"],
        "split": split,
        "n": len(data),
        "checkpoint": checkpoint,
        "seed": seed,
    }
    if metrics is None:  # the test loss and the likelihood in the data's own units
        # what numbers fitted on the training data (audio's baselines) load, if they need it
        training = functools.partial(
            load_dataset, saved["data"]["name"], "train", **saved["data"]["options"]
        )
        result.update(
            standard_metrics(
                model, data, split, batch_size=batch_size, seed=seed, reference=training
            )
        )
    else:
        options = dict(n=n, features=features, seed=seed, weights=weights, download=download)
        options.update(ppl_space=ppl_space, protocol=protocol)
        result.update(_sample_metrics(model, data, saved, split, names, options))
        result = _merged_with_earlier(run.path / "eval.json", result)
    from genlab.metrics.likelihood import key_definitions  # eval.json says what each key is

    definitions = {**result.get("definitions", {}), **key_definitions(result, split)}
    if definitions:
        result["definitions"] = definitions
    if figures and isinstance(model, Visualizable):
        paths = model.visualize(
            data, run.path / "figures", generator=torch.Generator().manual_seed(seed)
        )
        result["figures"] = [str(Path(p).relative_to(run.path)) for p in paths]
    result = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()
    }
    atomic_write_text(run.path / "eval.json", json.dumps(result, indent=2) + "\n")
    return result


def _sample_metrics(model, data, saved: dict, split: str, names, options: dict) -> dict:
    """FID, KID, IS, PR, PPL of the model's samples against the run's data (metrics.evaluate)."""
    from genlab.metrics.evaluate import SampleMetricOptions, evaluate_samples

    reference_id = {"data": saved["data"]["name"], "options": saved["data"]["options"]}
    return evaluate_samples(
        model, data, {**reference_id, "split": split}, SampleMetricOptions(names, **options)
    )


def _merged_with_earlier(path: Path, result: dict[str, Any]) -> dict[str, Any]:
    """`result` over the numbers of an earlier eval.json at `path` (sample metrics merged)."""
    if not path.is_file():
        return result
    try:
        previous = json.loads(path.read_text())
    except json.JSONDecodeError:
        return result
    if not isinstance(previous, dict):
        return result
    details = {**previous.get("sample_metrics", {}), **result["sample_metrics"]}
    return {**previous, **result, "sample_metrics": details}


def info(run_dir: str | Path) -> dict[str, Any]:
    """What a run is: its config, progress, checkpoints and last evaluation, and the facts its
    model class states about its config (contract.ModelFacts, e.g. a receptive field)."""
    run = RunDir(run_dir)
    saved = run.read_config()
    latest = run.latest_checkpoint()
    out = {
        "run": str(run.path),
        "model": saved["model"],
        "data": saved["data"],
        "steps_done": int(latest.name.split("-")[1]) if latest else 0,
        "steps_planned": saved.get("train", {}).get("steps"),
        "checkpoints": [p.name for p in run.step_checkpoints()],
        "has_best": (run.checkpoints_dir / "best").is_dir(),
        "weight_values": None,  # numbers in model.safetensors (parameters and buffers)
        "genlab_version": saved.get("genlab_version"),
        "git_commit": saved.get("git_commit"),
        "created": saved.get("created"),
        "model_config": saved["model_config"],
        "train": saved.get("train"),
    }
    cls = model_class(saved["model"])
    if isinstance(cls, ModelFacts):  # computed from the config: nothing is built
        out["facts"] = cls.facts(config_from(saved["model"], saved["model_config"]))
    if (run.path / WEIGHTS).is_file():
        out["weight_values"] = sum(t.numel() for t in load_weights(run.path / WEIGHTS).values())
    if (run.path / "eval.json").is_file():
        try:
            out["eval"] = json.loads((run.path / "eval.json").read_text())
        except json.JSONDecodeError:
            out["eval"] = "corrupt eval.json"
    return out


# --- export ---------------------------------------------------------------------------------
def export(run_dir: str | Path, out: str | Path, *, format: str = "hf", checkpoint: str = "last"):
    """Write a run's model in another toolkit's format (contract.Exporter: the model writes
    itself and its run assets, e.g. a tokenizer); `out` must be new or empty."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GenlabError(f"{out} already exists and is not empty; choose another --out")
    model = load(run_dir, checkpoint=checkpoint)
    if not isinstance(model, Exporter):
        raise GenlabError(f"{type(model).__name__} has no export formats")
    try:
        model.export(out, format)
    except ValueError as e:
        raise GenlabError(str(e)) from None
    return out
