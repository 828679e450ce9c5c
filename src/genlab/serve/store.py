"""The models a server holds: run directories (local, `file://` or any fsspec URL) loaded once.

A model spec is `[NAME[@VERSION]=]SOURCE`. SOURCE is a run directory, a URL that fsspec can open
(`file://`, `memory://`; `s3://`, `gs://`, `az://` with s3fs, gcsfs or adlfs installed) or a
registered source such as `hf:DIR` (a local Hugging Face GPT-2 folder). NAME defaults to the folder's name and VERSION to
the first 12 hex digits of the weights' sha256, so a version names exactly one set of weights.
From a URL only the files serving needs are copied (config, weights, tokenizer) into a local
folder; weights are loaded strictly from safetensors (nothing is unpickled).

What a model answers comes from the contract alone: text for a TokenGenerator with a tokenizer,
else samples of its modality (contract.sample_kind) taking its served sample options
(contract.option_fields), checked with contract.sample_keywords (an audio model, a
contract.AudioModel, also says its sample rate, for WAV answers); a contract.Translator also
translates uploaded images (its translate_inputs, and its served TranslateOptions checked with
contract.translate_keywords).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from genlab.contract import (
    Agent,
    AudioModel,
    TokenGenerator,
    Translator,
    option_fields,
    sample_keywords,
    sample_kind,
    sample_options,
    translate_options,
)
from genlab.errors import GenlabError
from genlab.serve.encoders import SampleInfo, formats_for
from genlab.serve.schemas import JSON_TYPES, option_type

RUN_FILES = ("config.json", "model.safetensors", "ema.safetensors", "tokenizer.json")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# The sample() keyword of class labels: a model takes that option only when its config says it
# has classes (`num_classes`, and `conditional` where the config has that switch), a label is
# below num_classes, and left out the labels cycle over the rows (no row-by-row batching).
CLASS_KEYWORD = "labels"
TEXT = "text"  # the kind /v1/models reports for a text model
# a modality (contract.sample_kind) -> the kind /v1/models reports and what its samples are
REPORTED = {"image": ("image", "images"), "audio": ("audio", "audio")}
ARRAYS = ("samples", "arrays")  # any other modality: arrays of numbers
MUSIC = ("music", "music")  # token samples in a music vocabulary: notes, heard as WAV and MIDI


def reported(modality: str | None, info: SampleInfo) -> tuple[str, str]:
    """(the kind /v1/models reports, what its samples are) of a sampling model."""
    if modality not in REPORTED and info.music is not None:
        return MUSIC
    return REPORTED.get(modality or "", ARRAYS)


def _music_of(model: nn.Module) -> Any:
    """The model's music vocabulary (a tokenizers.FileTokenizer of notes), or None."""
    from genlab.tokenizers import FileTokenizer

    tokenizer = getattr(model, "tokenizer", None)
    return tokenizer if isinstance(tokenizer, FileTokenizer) else None


@dataclass
class Served:
    """One loaded model and what the server knows about it."""

    name: str
    version: str
    kind: str  # what /v1/models reports: "image", "audio", "music", "samples", "text"
    model: nn.Module
    source: str
    modality: str | None = None  # contract.sample_kind of its samples; None: a text model
    options: tuple[dict[str, Any], ...] = ()  # the sample options it takes (see option_entry)
    shape: tuple[int, ...] | None = None
    num_classes: int | None = None
    class_option: str | None = None  # the option that picks a class (see CLASS_KEYWORD)
    description: str = ""  # the registry's one line about the model (for the web page)
    registry_name: str = ""  # the registered model it is ("gpt", "lstm", ...)
    # a contract.Translator's image inputs ("image", "style") and served translate options
    # (option_entry); no inputs: the model does not translate
    inputs: tuple[str, ...] = ()
    translate_options: tuple[dict[str, Any], ...] = ()
    sample_rate: int | None = None  # an audio model's samples per second (contract.AudioModel)

    @property
    def sample_info(self) -> SampleInfo:
        """What the response encoders may need to know about its samples."""
        return SampleInfo(sample_rate=self.sample_rate, music=_music_of(self.model))

    @property
    def makes(self) -> str:
        """What its samples are, in words ("images", "music", "text", ...), for errors."""
        return "text" if self.answers_text else reported(self.modality, self.sample_info)[1]

    @property
    def formats(self) -> list[str]:
        """The response formats of its samples (none for a text model)."""
        return [] if self.modality is None else formats_for(self.modality, self.sample_info)

    @property
    def answers_text(self) -> bool:
        """A text model: it takes a prompt and answers text (contract.TokenGenerator)."""
        return self.modality is None

    @property
    def translates(self) -> bool:
        """An image-to-image model (contract.Translator): POST .../translate takes its inputs."""
        return bool(self.inputs)

    @property
    def conditions(self) -> tuple[str, ...]:
        """The request fields beyond n, seed and format that this model takes."""
        return tuple(option["name"] for option in self.options)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "model": self.registry_name,
            "conditions": list(self.conditions),
            "shape": list(self.shape) if self.shape else None,
            "num_classes": self.num_classes,
            "source": self.source,
            "description": self.description,
            "options": list(self.options),
            "formats": self.formats,
            "sample_rate": self.sample_rate,
            "translate": {"inputs": list(self.inputs), "options": list(self.translate_options)}
            if self.translates
            else None,
        }


def parse_spec(spec: str) -> tuple[str | None, str | None, str]:
    """`[NAME[@VERSION]=]SOURCE` -> (name, version, source). An '=' inside a URL's query is
    not a name: the part before '=' must be a plain name."""
    head, sep, rest = spec.partition("=")
    if sep and "/" not in head and ":" not in head and head:
        name, _, version = head.partition("@")
        for what, value in (("name", name), ("version", version)):
            if value and not NAME.match(value):
                raise GenlabError(
                    f"bad model {what} {value!r} in {spec!r}: letters, digits, . _ - only"
                )
        return name or None, version or None, rest
    return None, None, spec


def _is_url(source: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", source))


def fetch_run(url: str, cache: Path) -> Path:
    """Copy the files serving needs from an fsspec URL into `cache`; the local folder."""
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as e:  # unknown protocol or its package missing
        raise GenlabError(f"cannot open {url}: {str(e).splitlines()[0]}") from None
    if isinstance(fs, LocalFileSystem):  # file://: read in place
        return Path(root)
    try:
        if not fs.isdir(root):
            raise GenlabError(f"{url} is not a folder")
        folder = cache / hashlib.sha256(url.encode()).hexdigest()[:16]
        folder.mkdir(parents=True, exist_ok=True)
        for name in RUN_FILES:
            remote = f"{root.rstrip('/')}/{name}"
            if fs.exists(remote):
                fs.get_file(remote, str(folder / name))
    except GenlabError:
        raise
    except (OSError, ValueError) as e:
        raise GenlabError(f"cannot read {url}: {e}") from None
    return folder


def _weights_version(folder: Path) -> str:
    from genlab.fileio import sha256_file

    for name in ("ema.safetensors", "model.safetensors"):
        if (folder / name).is_file():
            return sha256_file(folder / name)[:12]
    return "0"


def load_served(spec: str, *, device: str = "cpu", cache: Path | None = None) -> Served:
    """Load one model spec (see the module docstring); GenlabError for anything wrong."""
    from genlab.api import load, source_folder, source_scheme

    name, version, source = parse_spec(spec)
    if not source:
        raise GenlabError(f"empty model source in {spec!r}")
    registry_name = None
    if source_scheme(source) is not None:  # e.g. hf:DIR
        folder = source_folder(source)
        model = load(source, device=device)
    else:
        if _is_url(source):
            cache = cache or Path(tempfile.mkdtemp(prefix="genlab-serve-"))
            folder = fetch_run(source, cache)
        else:
            folder = Path(source)
        model = load(folder, device=device)
        registry_name = _saved_model_name(folder)
    # the source's last path part: the run's folder, not a local cache folder's hash
    last = source.rstrip("/").rsplit("/", 1)[-1] if _is_url(source) else folder.resolve().name
    name = name or re.sub(r"[^A-Za-z0-9._-]", "-", last or "model")[:64]
    if not NAME.match(name):
        name = "model"
    version = version or _weights_version(folder)
    return describe_model(name, version, model, source, registry_name=registry_name)


def _saved_model_name(folder: Path) -> str | None:
    """The registry name a run was trained as (config.json's "model"; a variant such as "lstm"
    is not its class's name)."""
    try:
        saved = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return saved.get("model") if isinstance(saved, dict) else None


def registry_description(registry_name: str, model: nn.Module) -> str:
    """The registry's one line about the model: its registered name's, else its class's (''
    for an unregistered one)."""
    from genlab.registry import MODELS

    target = f"{type(model).__module__}:{type(model).__qualname__}"
    entry = MODELS.get(registry_name) or next((e for e in MODELS.values() if e[0] == target), None)
    return entry[1] if entry else ""


def describe_model(
    name: str, version: str, model: nn.Module, source: str, *, registry_name: str | None = None
) -> Served:
    """What this model answers, from the contract: text for a TokenGenerator with a tokenizer,
    else samples of its modality (contract.sample_kind) with its served sample options."""
    registry_name = registry_name or type(model).__name__.lower()
    about = {
        "description": registry_description(registry_name, model),
        "registry_name": registry_name,
    }
    if isinstance(model, TokenGenerator) and model.tokenizer is not None:
        return Served(name, version, TEXT, model, source, **about)
    if isinstance(model, Agent):
        raise GenlabError(
            f"cannot serve {name}: an agent acts in an environment rather than making samples "
            "to send (genlab sample RUN --out play.gif shows it play)"
        )
    try:
        modality = sample_kind(model)
    except TypeError as e:
        raise GenlabError(f"cannot serve {name}: {e}") from None
    classes = _classes(model)
    fields = [f for f in option_fields(model, served=True) if classes or not _picks_class(f)]
    class_option = next((f.name for f in fields if _picks_class(f)), None)
    shape = tuple(getattr(model.config, "data_shape", ()) or ()) or None
    options = sample_options(model)
    return Served(
        name,
        version,
        reported(modality, SampleInfo(music=_music_of(model)))[0],
        model,
        source,
        modality,
        tuple(option_entry(options, f, classes) for f in fields),
        shape,
        classes if class_option else None,
        class_option,
        **about,
        **_translation(model),
        sample_rate=int(model.sample_rate) if isinstance(model, AudioModel) else None,
    )


def _translation(model: nn.Module) -> dict[str, Any]:
    """Served's fields of a contract.Translator: its image inputs and served translate options
    (none for any other model)."""
    if not isinstance(model, Translator):
        return {}
    options = translate_options(model)
    fields = option_fields(model, served=True, options=options)
    return {
        "inputs": tuple(model.translate_inputs),
        "translate_options": tuple(option_entry(options, f, None) for f in fields),
    }


def _picks_class(field: dataclasses.Field) -> bool:
    return (field.metadata.get("keyword") or field.name) == CLASS_KEYWORD


def _classes(model: nn.Module) -> int | None:
    """How many classes the model samples from (None: it is not class-conditional)."""
    config = model.config
    classes = getattr(config, "num_classes", None)
    return classes if classes and getattr(config, "conditional", True) else None


def option_entry(options: type, field: dataclasses.Field, classes: int | None) -> dict:
    """A served option (a field of the `options` dataclass: SampleOptions, TranslateOptions) as
    /v1/models lists it (the page builds its forms from these): name, JSON type, help, default
    and bounds (a class label's upper bound from the model's `classes`)."""
    meta = field.metadata
    kind = option_type(options, field)
    upper = meta.get("le")
    if _picks_class(field) and classes is not None:
        upper = classes - 1 if upper is None else min(upper, classes - 1)
    return {
        "name": field.name,
        "type": JSON_TYPES.get(kind, "string"),
        "help": meta.get("help", ""),
        "default": None if field.default is dataclasses.MISSING else field.default,
        "ge": meta.get("ge"),
        "le": upper,
        "choices": list(meta["choices"]) if meta.get("choices") else None,
    }


def sample_conditions(served: Served, values: dict[str, Any]) -> dict[str, Any]:
    """Request option values (None: not given) -> model.sample keywords (contract
    sample_keywords); a ValueError names an option the model does not take or a bad value."""
    given = {key: value for key, value in values.items() if value is not None}
    for key, value in given.items():
        if key not in served.conditions:
            takes = ", ".join(served.conditions) or "none"
            raise ValueError(f"{served.name} does not take {key} (it takes: {takes})")
        if key == served.class_option and served.num_classes and value >= served.num_classes:
            raise ValueError(f"{key} must be < {served.num_classes} for {served.name}")
    return sample_keywords(served.model, given)
