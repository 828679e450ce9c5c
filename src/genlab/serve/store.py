"""The models a server holds: run directories (local, `file://` or any fsspec URL) loaded once.

A model spec is `[NAME[@VERSION]=]SOURCE`. SOURCE is a run directory, a URL that fsspec can open
(`file://`, `memory://`; `s3://`, `gs://`, `az://` with s3fs, gcsfs or adlfs installed) or
`hf:DIR` (a local Hugging Face GPT-2 folder). NAME defaults to the folder's name and VERSION to
the first 12 hex digits of the weights' sha256, so a version names exactly one set of weights.
From a URL only the files serving needs are copied (config, weights, tokenizer) into a local
folder; weights are loaded strictly from safetensors (nothing is unpickled).
"""

from __future__ import annotations

import hashlib
import inspect
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from genlab.errors import GenlabError

RUN_FILES = ("config.json", "model.safetensors", "ema.safetensors", "tokenizer.json")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# request fields -> the keyword of model.sample they map to
CONDITIONS = {"label": "labels", "truncation": "truncation", "temperature": "temperature"}


@dataclass
class Served:
    """One loaded model and what the server knows about it."""

    name: str
    version: str
    kind: str  # "image" (samples are (C, H, W) images), "samples" (other arrays) or "text"
    model: nn.Module
    source: str
    conditions: tuple[str, ...] = ()  # the request fields this model takes (label, ...)
    shape: tuple[int, ...] | None = None
    num_classes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    description: str = ""  # the registry's one line about the model (for the web page)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "model": type(self.model).__name__.lower(),
            "conditions": list(self.conditions),
            "shape": list(self.shape) if self.shape else None,
            "num_classes": self.num_classes,
            "source": self.source,
            "description": self.description,
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
    from genlab.api import hf_folder, load

    name, version, source = parse_spec(spec)
    if not source:
        raise GenlabError(f"empty model source in {spec!r}")
    if hf_folder(source) is not None:
        folder = hf_folder(source)
        model = load(source, device=device)
    else:
        if _is_url(source):
            cache = cache or Path(tempfile.mkdtemp(prefix="genlab-serve-"))
            folder = fetch_run(source, cache)
        else:
            folder = Path(source)
        model = load(folder, device=device)
    assert folder is not None
    # the source's last path part: the run's folder, not a local cache folder's hash
    last = source.rstrip("/").rsplit("/", 1)[-1] if _is_url(source) else folder.resolve().name
    name = name or re.sub(r"[^A-Za-z0-9._-]", "-", last or "model")[:64]
    if not NAME.match(name):
        name = "model"
    version = version or _weights_version(folder)
    return describe_model(name, version, model, source)


def registry_description(model: nn.Module) -> str:
    """The registry's one-line description of the model's class ('' for an unregistered one)."""
    from genlab.registry import MODELS

    target = f"{type(model).__module__}:{type(model).__qualname__}"
    return next((line for where, line in MODELS.values() if where == target), "")


def describe_model(name: str, version: str, model: nn.Module, source: str) -> Served:
    """What kind of model this is and which request fields it takes (from the contract)."""
    description = registry_description(model)
    if hasattr(model, "step") and getattr(model, "tokenizer", None) is not None:
        return Served(name, version, "text", model, source, description=description)
    accepted = inspect.signature(model.sample).parameters
    conditions = tuple(field for field, kw in CONDITIONS.items() if kw in accepted)
    config = model.config
    if not (getattr(config, "num_classes", None) and getattr(config, "conditional", True)):
        conditions = tuple(c for c in conditions if c != "label")  # an unconditional model
    shape = tuple(getattr(model.config, "data_shape", ()) or ()) or None
    kind = "image" if shape is not None and len(shape) == 3 else "samples"
    classes = getattr(model.config, "num_classes", None) if "label" in conditions else None
    return Served(
        name, version, kind, model, source, conditions, shape, classes, description=description
    )


def sample_conditions(served: Served, fields: dict[str, Any]) -> dict[str, Any]:
    """Request fields -> model.sample keywords; ValueError naming a field the model lacks."""
    cond = {}
    for key, value in fields.items():
        if value is None:
            continue
        if key not in served.conditions:
            takes = ", ".join(served.conditions) or "none"
            raise ValueError(f"{served.name} does not take {key} (it takes: {takes})")
        if key == "label" and served.num_classes is not None and value >= served.num_classes:
            raise ValueError(f"label must be < {served.num_classes} for {served.name}")
        cond[CONDITIONS[key]] = value
    return cond
