"""The Python API behind the CLI: train a run, load it, sample from it, evaluate it.

    import genlab
    run_dir, summary = genlab.train_run("vae", "mnist-5k", "runs/vae", train_overrides={"steps": "500"})
    model = genlab.load("runs/vae")            # ready to sample, in eval mode
    images = model.sample(16, generator=torch.Generator().manual_seed(0))
    genlab.evaluate("runs/vae")                # eval.json + figures in the run directory
    text = "".join(genlab.generate("runs/gpt", "ROMEO:", max_new_tokens=100))  # language models

Only the registry and the contract are used here; no model is named.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import datetime as _dt
import inspect
import json
import math
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genlab import __version__
from genlab.config import apply_overrides, from_dict, to_dict
from genlab.contract import (
    LikelihoodModel,
    Visualizable,
    config_for_data,
    data_kinds,
    trainer_module,
)
from genlab.errors import GenlabError
from genlab.fileio import atomic_write_text
from genlab.registry import model_class
from genlab.training.checkpoint import EMA_WEIGHTS, WEIGHTS, RunDir, load_weights
from genlab.training.loop import select_device

TOKENIZER = "tokenizer.json"  # text runs: the tokenizer the model was trained with


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


def _data_option(text: str) -> Any:
    """Dataset options from the command line: numbers and booleans parsed, the rest strings."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, int | float) else text


def split_overrides(
    overrides: dict[str, str],
) -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    """`-o` keys: `train.X` -> TrainConfig, `data.X` -> dataset options, the rest -> the model."""
    model, training, data = {}, {}, {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if head == "train" and rest:
            training[rest] = value
        elif head == "data" and rest:
            data[rest] = _data_option(value)
        else:
            model[key] = value
    return model, training, data


def load_datasets(data_name: str, options: dict[str, Any], cfg: Any):
    from genlab.data import load_dataset

    train_data = load_dataset(data_name, cfg.train_split, **options)
    val_data = load_dataset(data_name, cfg.val_split, **options) if cfg.val_split else None
    return train_data, val_data


def build_model(name: str, config: Any) -> nn.Module:
    cls = model_class(name)
    try:
        return cls(config)
    except (ValueError, AssertionError) as e:
        raise GenlabError(f"cannot build {name} with this config: {e}") from None


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

    Settings are layered, later wins: the model's `train_defaults`, the named `preset` (the
    model class's `presets`, e.g. "gpu"), the config file, then `overrides` and steps/seed.

    `init_from` starts from a trained model instead of random weights (fine-tuning): a genlab
    run directory or `hf:DIR` (a local Hugging Face GPT-2 folder). Its architecture and, for
    text, its tokenizer are kept; `-o` may still change options that leave the weights' shapes
    alone (e.g. dropout), and the data must fit the model (same vocabulary, windows no longer
    than its block_size).

    `fold=(k, i)`: k-fold cross-validation on the training split: fold i (of a seeded shuffle)
    is the validation data, the other k - 1 folds train (genlab.data.base.kfold). `on_eval(step,
    metrics)` is passed to the training loop when it takes one (genlab.tune reports through it).

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
    from genlab.training.distributed import launched_rank

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
            setup = _new_setup(
                model_name, data_name, overrides, config_file, steps, seed, preset, init_from
            )
            setup.fold = fold
        select_device(setup.train_cfg.device)  # a device this machine lacks: refused here too
        train_data, val_data = _training_data(setup)
        restart = resume and run.latest_checkpoint() is None  # killed before its first one
        if resume and not restart:
            model = build_model(model_name, setup.model_config)
        else:
            _check_data_kind(model_name, setup, train_data.spec)
            if not resume:
                setup.model_config = _new_model_config(model_name, setup, train_data.spec)
            model = _model_for_data(model_name, setup, train_data)
        if main and not resume:
            held.enter_context(run.create_locked(_run_config(model_name, setup, preset)))
        if main and restart:
            from genlab.training.logging import clear_logs

            clear_logs(run.path)
        if main and resume and steps is not None:  # written with the next checkpoint
            run.pending_config = {**setup.saved, "train": {**setup.saved["train"], "steps": steps}}
        _attach_tokenizer(model, train_data, run, save=main and (not resume or restart))
        extra = {}
        if on_eval is not None and "on_eval" in inspect.signature(setup.loop.train).parameters:
            extra["on_eval"] = on_eval
        summary = setup.loop.train(
            model, train_data, val_data, setup.train_cfg, run,
            resume=resume and not restart, progress=progress, **extra,
        )  # fmt: skip
    return run.path, summary


@dataclasses.dataclass
class _Setup:
    """What a training command resolved before its data is loaded and its model is built."""

    cls: type
    loop: Any  # the trainer module: TrainConfig and train(...)
    train_cfg: Any
    data_name: str
    data_options: dict[str, Any]
    fold: tuple[int, int] | None = None
    model_config: Any = None  # a resumed run's; a new run's once the data is known
    saved: dict[str, Any] | None = None  # a resumed run's config.json
    file_cfg: dict[str, Any] = dataclasses.field(default_factory=dict)  # preset + config file
    model_over: dict[str, str] = dataclasses.field(default_factory=dict)  # -o model options
    init_from: str | Path | None = None
    initial: tuple[dict[str, Any], dict] | None = None  # --init-from's (config, weights)


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
    if data_options.get("tokenizer") not in (None, "char", "word", "bpe"):
        # a ready tokenizer (e.g. --init-from's): the run keeps its own copy
        data_options = {**data_options, "tokenizer": str(run.path / TOKENIZER)}
    setup = _Setup(cls, loop, train_cfg, saved["data"]["name"], data_options, saved=saved)
    setup.fold = tuple(saved["fold"]) if saved.get("fold") else None
    setup.model_config = from_dict(cls.Config, saved["model_config"], prefix="model_config.")
    if saved.get("init_from") and run.latest_checkpoint() is None:  # restarts from its source
        setup.init_from = saved["init_from"]
        setup.initial = _init_source(setup.init_from, model_name)[:2]
    return setup


def _new_setup(
    model_name: str,
    data_name: str | None,
    overrides: dict[str, str],
    config_file: str | Path | None,
    steps: int | None,
    seed: int | None,
    preset: str | None,
    init_from: str | Path | None,
) -> _Setup:
    """A new run's settings: train_defaults < preset < config file < -o, --steps, --seed."""
    if not data_name:
        raise GenlabError("--data is required (e.g. --data mnist-5k; `genlab list` shows all)")
    cls = model_class(model_name)
    loop = trainer_module(cls)
    file_cfg = _layered(
        _preset(cls, model_name, preset), _read_config_file(config_file) if config_file else {}
    )
    model_over, train_over, data_options = split_overrides(overrides)
    train_cfg = from_dict(
        loop.TrainConfig,
        {**getattr(cls, "train_defaults", {}), **file_cfg.get("train", {})},
        prefix="train.",
    )
    train_cfg = apply_overrides(train_cfg, train_over, prefix="train.")
    if steps is not None:
        train_cfg = apply_overrides(train_cfg, {"steps": str(steps)}, prefix="train.")
    if seed is not None:
        train_cfg = dataclasses.replace(train_cfg, seed=seed)
    data_options = {**file_cfg.get("data", {}).get("options", {}), **data_options}
    setup = _Setup(cls, loop, train_cfg, data_name, data_options, file_cfg=file_cfg)
    setup.model_over = model_over
    if init_from is not None:
        if file_cfg.get("model_config"):
            raise GenlabError(
                f"--init-from takes the architecture from {init_from}; a preset or config "
                "file may not set model_config"
            )
        init_config, initial, tokenizer_path = _init_source(init_from, model_name)
        if tokenizer_path is not None:
            if "tokenizer" in data_options or "vocab_size" in data_options:
                raise GenlabError(
                    f"--init-from reads the text with {init_from}'s tokenizer; leave out "
                    "data.tokenizer and data.vocab_size"
                )
            data_options["tokenizer"] = str(tokenizer_path.resolve())
        setup.init_from, setup.initial = init_from, (init_config, initial)
    return setup


def _training_data(setup: _Setup):
    """(train, validation) datasets; with a fold, both cut from the training split."""
    train_data, val_data = load_datasets(setup.data_name, setup.data_options, setup.train_cfg)
    if setup.fold is not None:
        from genlab.data.base import kfold

        k, i = setup.fold
        try:
            train_data, val_data = kfold(train_data, k, i, seed=setup.train_cfg.seed)
        except ValueError as e:
            raise GenlabError(str(e)) from None
    return train_data, val_data


def _new_model_config(model_name: str, setup: _Setup, spec: Any) -> Any:
    """The model config of a new run: the data's fields, the file's, then -o (or, with
    --init-from, the source's architecture checked against the data)."""
    cls = setup.cls
    if setup.initial is not None:
        init_config, initial = setup.initial
        model_cfg = from_dict(cls.Config, init_config, prefix="model_config.")
        model_cfg = apply_overrides(model_cfg, setup.model_over)
        model_cfg = _fit_to_data(model_cfg, spec, setup.init_from)
        _check_shapes(model_name, model_cfg, initial, setup.init_from)
        return model_cfg
    model_cfg = config_for_data(cls.Config(), spec)
    if setup.file_cfg.get("model_config"):
        model_cfg = from_dict(
            cls.Config,
            {**to_dict(model_cfg), **setup.file_cfg["model_config"]},
            prefix="model_config.",
        )
    return apply_overrides(model_cfg, setup.model_over)


def _check_data_kind(model_name: str, setup: _Setup, spec: Any) -> None:
    """A GenlabError unless the model declares the data's kind (contract.data_kinds); checked
    before the data fills the model's config, whose own complaint would be less direct."""
    kinds = data_kinds(setup.cls)
    if kinds is not None and spec.kind not in kinds:
        raise GenlabError(
            f"{model_name} cannot train on {setup.data_name}: it models "
            f"{' or '.join(kinds)} data, and {setup.data_name} is {spec.kind} data"
        )


def _model_for_data(model_name: str, setup: _Setup, train_data: Any) -> nn.Module:
    """The model a run starts from at step 0, checked against the data: a GenlabError when
    its loss fails on two training examples (wrong dtype, shape, vocabulary, ...)."""
    torch.manual_seed(setup.train_cfg.seed)  # the initial weights depend on the seed only
    model = build_model(model_name, setup.model_config)
    if setup.initial is not None:
        try:
            model.load_state_dict(setup.initial[1], strict=True)
        except RuntimeError as e:
            raise GenlabError(
                f"the weights of {setup.init_from} do not fit this config: {str(e).splitlines()[0]}"
            ) from None
    _check_loss_on(model, f"{model_name} cannot train on {setup.data_name}", train_data)
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


def _run_config(model_name: str, setup: _Setup, preset: str | None) -> dict[str, Any]:
    """config.json of a new run."""
    return {
        "model": model_name,
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


def _attach_tokenizer(model: nn.Module, train_data: Any, run: RunDir, *, save: bool) -> None:
    """Text: the model encodes prompts and decodes with the data's tokenizer, which a run
    starting at step 0 saves beside its config."""
    tokenizer = train_data.spec.extra.get("tokenizer")
    if tokenizer is None:
        return
    model.tokenizer = tokenizer
    if save:
        from genlab.text.tokenizers import save_tokenizer

        save_tokenizer(tokenizer, run.path / TOKENIZER)


def _preset(cls: type, model_name: str, name: str | None) -> dict[str, Any]:
    """The model's named preset ({"model_config": ..., "train": ...}), {} for none."""
    if name is None:
        return {}
    presets = getattr(cls, "presets", {})
    if name not in presets:
        known = ", ".join(presets) or "none"
        raise GenlabError(f"{model_name} has no preset {name!r} (presets: {known})")
    return presets[name]


def _layered(lower: dict[str, Any], upper: dict[str, Any]) -> dict[str, Any]:
    """Two config-file dicts merged section by section; `upper` wins."""
    merged = {
        key: {**lower.get(key, {}), **upper.get(key, {})} for key in ("model_config", "train")
    }
    options = {
        **lower.get("data", {}).get("options", {}),
        **upper.get("data", {}).get("options", {}),
    }
    return {**merged, "data": {"options": options}}


def _read_config_file(path: str | Path) -> dict[str, Any]:
    from genlab.fileio import read_settings

    data = read_settings(path, "config file")
    if not isinstance(data, dict) or set(data) - {"model", "model_config", "train", "data"}:
        raise GenlabError(
            f"config file {path} must be a mapping with keys among model_config, train, data"
        )
    return data


def _has_tokenizer(folder: Path) -> bool:
    names = ("tokenizer.json", f"genlab_{TOKENIZER}", "vocab.json")
    return any((folder / name).is_file() for name in names)


def _init_source(source: str | Path, model_name: str) -> tuple[dict[str, Any], dict, Path | None]:
    """What `--init-from SOURCE` starts a run from: (the model config as a dict, the weights,
    the tokenizer's path or None). SOURCE is a genlab run directory (its last checkpoint, EMA
    weights when kept) or `hf:DIR`, a local Hugging Face GPT-2 folder."""
    folder = hf_folder(source)
    if folder is not None:
        if model_name != "gpt":
            raise GenlabError(f"an hf: folder holds a GPT-2, not a {model_name}; train gpt")
        model = load(source)
        tokenizer = folder if _has_tokenizer(folder) else None
    else:
        saved = RunDir(source).read_config()
        if saved["model"] != model_name:
            raise GenlabError(f"{source} holds a {saved['model']} run, not a {model_name}")
        model = load(source)
        tokenizer = Path(source) / TOKENIZER if (Path(source) / TOKENIZER).is_file() else None
    if getattr(model, "block_size", None) is not None and tokenizer is None:
        raise GenlabError(f"{source} has no tokenizer to read the text with")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return to_dict(model.config), state, tokenizer


def _fit_to_data(config: Any, spec: Any, source: str | Path) -> Any:
    """`config` (a pretrained model's) checked against the data; GenlabError naming what differs.

    A language model reads windows up to its block_size, so text windows may be shorter."""
    fitted = config_for_data(config, spec)
    if spec.kind == "text" and hasattr(config, "block_size"):
        if spec.shape[0] > config.block_size:
            raise GenlabError(
                f"data.block_size {spec.shape[0]} is longer than {source}'s block_size "
                f"{config.block_size}"
            )
        fitted = dataclasses.replace(fitted, block_size=config.block_size)
    differ = [
        f"{f.name} {getattr(config, f.name)!r} (the data needs {getattr(fitted, f.name)!r})"
        for f in dataclasses.fields(config)
        if getattr(config, f.name) != getattr(fitted, f.name)
    ]
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
def hf_folder(source: str | Path) -> Path | None:
    """The folder of an `hf:DIR` source (a local Hugging Face model folder), else None."""
    text = str(source)
    return Path(text[3:]).expanduser() if text.startswith("hf:") else None


def load(run_dir: str | Path, *, checkpoint: str = "last", ema: bool = True, device: str = "cpu"):
    """The model of a run, weights loaded strictly (EMA weights when the run kept them).

    `hf:DIR` loads a local Hugging Face GPT-2 folder as a genlab GPT instead, with the folder's
    tokenizer when it has one (genlab.text.hf.import_gpt). `device`: auto (cuda, then mps, then
    cpu), cpu, cuda, cuda:N or mps; one that is unknown or not on this machine is a GenlabError,
    raised before anything is read."""
    target = select_device(device)
    folder = hf_folder(run_dir)
    if folder is not None:
        from genlab.text.hf import import_gpt
        from genlab.text.tokenizers import open_tokenizer

        model = import_gpt(folder)
        if _has_tokenizer(folder):
            model.tokenizer = open_tokenizer(folder)
        return model.to(target).eval()
    run = RunDir(run_dir)
    saved = run.read_config()
    cls = model_class(saved["model"])
    config = from_dict(cls.Config, saved["model_config"], prefix="model_config.")
    model = build_model(saved["model"], config)
    folder = run.weights_folder(checkpoint)
    path = folder / EMA_WEIGHTS if ema and (folder / EMA_WEIGHTS).is_file() else folder / WEIGHTS
    try:
        model.load_state_dict(load_weights(path), strict=True)
    except RuntimeError as e:
        raise GenlabError(
            f"weights in {path} do not match the config: {str(e).splitlines()[0]}"
        ) from None
    if (run.path / TOKENIZER).is_file():
        from genlab.text.tokenizers import load_tokenizer

        model.tokenizer = load_tokenizer(run.path / TOKENIZER)
    return model.to(target).eval()


def sample(
    run_dir: str | Path,
    n: int,
    out: str | Path,
    *,
    seed: int = 0,
    checkpoint: str = "last",
    label: int | None = None,
    truncation: float | None = None,
    temperature: float | None = None,
    device: str = "cpu",
) -> Path:
    """Draw n samples into a picture; `label` (conditional models), `truncation` (StyleGAN's
    psi) and `temperature` (flows) are passed to `model.sample` only when given, and only to
    models that take them. `device` is where the model runs (see `load`)."""
    from genlab.imaging import save_samples_figure

    if n < 1:
        raise GenlabError(f"--n must be at least 1, got {n}")
    out = Path(out)
    _check_writable(out)
    model = load(run_dir, checkpoint=checkpoint, device=device)
    cond = _sample_conditions(model, labels=label, truncation=truncation, temperature=temperature)
    where = next(model.parameters()).device  # the resolved device
    with torch.no_grad():
        try:
            samples = model.sample(
                n, generator=torch.Generator(device=where).manual_seed(seed), **cond
            )
        except ValueError as e:
            raise GenlabError(f"cannot sample: {e}") from None
    try:
        written = save_samples_figure(samples, out)
    except OSError as e:
        raise GenlabError(f"cannot write {out}: {e.strerror}") from None
    if not written:
        raise GenlabError(f"this model's samples (shape {tuple(samples.shape)}) have no picture")
    return out


def _sample_conditions(model: nn.Module, **given: Any) -> dict[str, Any]:
    """The keyword arguments of model.sample that were given; a GenlabError if it lacks one."""
    accepted = inspect.signature(model.sample).parameters
    cond = {k: v for k, v in given.items() if v is not None}
    for key, value in cond.items():
        if key not in accepted:
            flag = {"labels": "--label"}.get(key, f"--{key}")
            raise GenlabError(f"{type(model).__name__} does not take {flag}")
        if isinstance(value, float) and not (math.isfinite(value) and value >= 0):
            raise GenlabError(f"--{key} must be a number >= 0, got {value}")
    return cond


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
    from genlab.metrics.ppl import LatentGenerator, StyleGenerator, lerp, slerp

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
    _check_writable(out)
    model = load(run_dir, checkpoint=checkpoint, device=device)
    if not isinstance(model, LatentGenerator):
        raise GenlabError(f"{type(model).__name__} has no latent space to walk through")
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
    if pictures[0].dim() != 4:
        raise GenlabError(f"{type(model).__name__} does not generate images")
    try:
        return save_gif(pictures, out, duration_ms=duration_ms)
    except OSError as e:
        raise GenlabError(f"cannot write {out}: {e.strerror}") from None


def _check_writable(out: Path) -> None:
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
    from genlab.metrics.likelihood import negative_log_likelihood
    from genlab.training.loop import evaluate_loss

    if metrics is not None:
        from genlab.metrics.evaluate import check_protocol, parse_metrics

        names = parse_metrics(metrics if isinstance(metrics, str) else ",".join(metrics))
        check_protocol(features, protocol)  # and the feature set
        if not names:
            raise GenlabError("--metrics needs at least one of fid, kid, is, pr, ppl")

    run = RunDir(run_dir)
    saved = run.read_config()
    model = load(run.path, checkpoint=checkpoint, device=device)
    where = next(model.parameters()).device  # the resolved device
    data = load_dataset(saved["data"]["name"], split, **saved["data"]["options"])
    result: dict[str, Any] = {
        "model": saved["model"],
        "data": saved["data"]["name"],
        "split": split,
        "n": len(data),
        "checkpoint": checkpoint,
        "seed": seed,
    }
    if metrics is None and data.spec.kind == "text":  # language models: loss, ppl, bits/char
        from genlab.metrics.text import language_model_metrics

        text = language_model_metrics(model, data, batch_size=batch_size)
        result.update({f"{split}_{k}": v for k, v in text.items()})
    elif metrics is None:
        loss = evaluate_loss(model, data, batch_size=batch_size, device=where, seed=seed)
        result.update({f"{split}_{k}": v for k, v in loss.items()})
        if isinstance(model, LikelihoodModel):
            result.update(negative_log_likelihood(model, data, batch_size=batch_size, seed=seed))
    else:
        from genlab.metrics.evaluate import SampleMetricOptions, evaluate_samples

        options = SampleMetricOptions(
            names,
            n=n,
            features=features,
            seed=seed,
            weights=weights,
            download=download,
            ppl_space=ppl_space,
            protocol=protocol,
        )
        reference_id = {"data": saved["data"]["name"], "options": saved["data"]["options"]}
        result.update(evaluate_samples(model, data, {**reference_id, "split": split}, options))
        if (run.path / "eval.json").is_file():  # keep the numbers of earlier evaluations
            try:
                previous = json.loads((run.path / "eval.json").read_text())
            except json.JSONDecodeError:
                previous = {}
            if isinstance(previous, dict):
                details = {**previous.get("sample_metrics", {}), **result["sample_metrics"]}
                result = {**previous, **result, "sample_metrics": details}
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


def info(run_dir: str | Path) -> dict[str, Any]:
    """What a run is: its config, progress, checkpoints and last evaluation."""
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
    if (run.path / WEIGHTS).is_file():
        out["weight_values"] = sum(t.numel() for t in load_weights(run.path / WEIGHTS).values())
    if (run.path / "eval.json").is_file():
        try:
            out["eval"] = json.loads((run.path / "eval.json").read_text())
        except json.JSONDecodeError:
            out["eval"] = "corrupt eval.json"
    return out


# --- text: generate, export -----------------------------------------------------------------
def generate(
    run_dir: str | Path,
    prompt: str,
    *,
    checkpoint: str = "last",
    use_cache: bool = True,
    device: str = "cpu",
    **settings: Any,
) -> Iterator[str]:
    """Stream the text a language model run generates after `prompt`, piece by piece.

    `settings` are genlab.text.generation.GenerationConfig fields (max_new_tokens, temperature,
    top_k, top_p, repetition_penalty, stop, seed); they and the prompt are checked before the
    first piece (a prompt with characters outside a character vocabulary is an error).
    `device` is where the model runs (see `load`).
    """
    from genlab.text.generation import GenerationConfig, generate_text

    model = load(run_dir, checkpoint=checkpoint, device=device)
    if not hasattr(model, "step") or getattr(model, "tokenizer", None) is None:
        raise GenlabError(f"{run_dir} is not a language model run (no tokenizer); try sample")
    config = GenerationConfig(**settings)  # generate_text validates it before the first piece
    return generate_text(model, model.tokenizer, prompt, config, use_cache=use_cache)


def export(run_dir: str | Path, out: str | Path, *, format: str = "hf", checkpoint: str = "last"):
    """Write a run's model in another library's format (the model's `export(folder, format)`),
    with the run's tokenizer beside it; `out` must be new or empty."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GenlabError(f"{out} already exists and is not empty; choose another --out")
    model = load(run_dir, checkpoint=checkpoint)
    if not hasattr(model, "export"):
        raise GenlabError(f"{type(model).__name__} has no export formats")
    try:
        model.export(out, format)
    except ValueError as e:
        raise GenlabError(str(e)) from None
    if (Path(run_dir) / TOKENIZER).is_file():
        from genlab.text.tokenizers import save_hugging_face

        shutil.copyfile(Path(run_dir) / TOKENIZER, out / f"genlab_{TOKENIZER}")
        save_hugging_face(model.tokenizer, out)  # also as transformers' AutoTokenizer reads it
    return out
