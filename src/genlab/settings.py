"""One settings resolver for every command that builds a model: `genlab train` and `genlab tune`.

A run's settings come in three sections (the keys of config.json and of a config file):
`model_config` (the model's Config), `train` (its trainer's TrainConfig) and `data.options`
(the dataset's options). Each section is layered, later wins:

    the model's defaults      registry.default_config(name); contract.train_defaults and
                              contract.data_defaults
    < the named preset        `--preset gpu`: the class's `presets` (contract.HasPresets)
    < the config file         `--config FILE` (YAML or JSON, the same three sections)
    < the command line        `-o key=value` (`train.X`, `data.X`, else the model), --steps, --seed

The model config's data-dependent fields (`data_shape`, `vocab_size`, ...) come from the data
(contract.config_for_data) between the defaults and the preset, so only a new run with its data
loaded gets its final model config (:meth:`Settings.model_config_for`).
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

from genlab.config import apply_overrides, from_dict, to_dict
from genlab.contract import (
    HasPresets,
    config_for_data,
    data_defaults,
    train_defaults,
    trainer_module,
)
from genlab.errors import GenlabError
from genlab.registry import default_config, model_class

SECTIONS = ("model", "model_config", "train", "data")  # the keys a config file may have


@dataclasses.dataclass
class Settings:
    """A new run's settings before its data is loaded (see the module docstring)."""

    name: str  # the registry name
    cls: type
    loop: Any  # the trainer module (contract.Trainer)
    train: Any  # its TrainConfig, every layer applied
    data_options: dict[str, Any]
    file_cfg: dict[str, Any]  # the preset and the config file, merged
    model_over: dict[str, str]  # -o model options

    def model_config_for(self, spec: Any = None) -> Any:
        """The model config: defaults, the data's fields (when `spec` is given), the preset and
        config file's `model_config`, then -o."""
        config = default_config(self.name)
        if spec is not None:
            config = config_for_data(config, spec)
        if self.file_cfg.get("model_config"):
            config = from_dict(
                type(config),
                {**to_dict(config), **self.file_cfg["model_config"]},
                prefix="model_config.",
            )
        return apply_overrides(config, self.model_over)


def resolve(
    name: str,
    *,
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, str] | None = None,
    steps: int | None = None,
    seed: int | None = None,
) -> Settings:
    """The layered settings of a new `name` run (GenlabError for an unknown name, preset,
    option or a malformed config file)."""
    cls = model_class(name)
    loop = trainer_module(cls)
    file_cfg = layered(preset_of(cls, name, preset), read_config_file(config_file))
    model_over, train_over, data_over = split_overrides(overrides or {})
    defaults = train_defaults(cls, default_config(name))
    train = from_dict(loop.TrainConfig, {**defaults, **file_cfg["train"]}, prefix="train.")
    train = apply_overrides(train, train_over, prefix="train.")
    if steps is not None:
        train = apply_overrides(train, {"steps": str(steps)}, prefix="train.")
    if seed is not None:
        train = dataclasses.replace(train, seed=seed)
    try:  # the data defaults may read the model's own options (a MusicVAE's bars)
        own = apply_overrides(default_config(name), model_over)
    except GenlabError:  # a bad -o is reported later, in its turn (after --init-from's checks)
        own = default_config(name)
    data_options = {**data_defaults(cls, own), **file_cfg["data"]["options"], **data_over}
    return Settings(name, cls, loop, train, data_options, file_cfg, model_over)


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
            data[rest] = data_option(value)
        else:
            model[key] = value
    return model, training, data


def data_option(text: str) -> Any:
    """Dataset options from the command line: numbers and booleans parsed, the rest strings."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, int | float) else text


def preset_of(cls: type, name: str, preset: str | None) -> dict[str, Any]:
    """The model's named preset ({"model_config": ..., "train": ..., "data": ...}), {} for none."""
    if preset is None:
        return {}
    presets = cls.presets if isinstance(cls, HasPresets) else {}
    if preset not in presets:
        known = ", ".join(presets) or "none"
        raise GenlabError(f"{name} has no preset {preset!r} (presets: {known})")
    return presets[preset]


def layered(lower: dict[str, Any], upper: dict[str, Any]) -> dict[str, Any]:
    """Two config-file dicts merged section by section; `upper` wins."""
    merged = {
        key: {**lower.get(key, {}), **upper.get(key, {})} for key in ("model_config", "train")
    }
    options = {
        **lower.get("data", {}).get("options", {}),
        **upper.get("data", {}).get("options", {}),
    }
    return {**merged, "data": {"options": options}}


def read_config_file(path: str | Path | None) -> dict[str, Any]:
    """A config file's sections ({} without a file); GenlabError for other keys."""
    if path is None:
        return {}
    from genlab.fileio import read_settings

    data = read_settings(path, "config file")
    if not isinstance(data, dict) or set(data) - set(SECTIONS):
        raise GenlabError(
            f"config file {path} must be a mapping with keys among model_config, train, data"
        )
    return data
