"""The shape of the house (issue 17): shared code sees protocols and registries, never a family.

Two kinds of checks:
- over the source (ast, nothing imported): no shared module imports a family package, calls
  `hasattr` on a model, or compares a model name or a data kind with a string literal, so a new
  family plugs in by implementing protocols and registering names;
- over the registry (every model at its tiny configs, as tests/test_contract.py builds them):
  each model is an instance of every protocol whose methods it defines (a model with
  `sample_latent` but no `decode_latent` would silently lose the server's batching), its sample
  options describe its `sample` keywords, and its trainer module is a Trainer.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
from pathlib import Path

import pytest

from genlab.contract import (
    AdversarialModel,
    AudioModel,
    CriticHook,
    Exporter,
    HasPresets,
    HasSampleOptions,
    LatentGenerator,
    LatentSampler,
    Restorer,
    RunAssets,
    TokenGenerator,
    Trainer,
    Translator,
    data_kinds,
    sample_options,
    trainer_module,
)
from genlab.data.base import MODALITIES
from genlab.registry import MODELS, model_class
from test_contract import CASES, build

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "genlab"


def _import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts/import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GRAPH = _import_graph()
SHARED = [p for p in sorted(SRC.rglob("*.py")) if GRAPH.family_of(GRAPH.module_name(p)) is None]


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{node.lineno}"


def test_the_shared_modules_are_found():
    names = {GRAPH.module_name(p) for p in SHARED}
    assert {"genlab.api", "genlab.cli", "genlab.training.loop", "genlab.serve.service"} <= names
    assert not any(GRAPH.family_of(n) for n in names)
    assert "genlab.text.gpt" not in names and "genlab.gan.train" not in names


def test_no_shared_module_imports_a_family():
    leaks = [
        f"{GRAPH.module_name(p)} imports {target}"
        for p in SHARED
        for target in sorted(GRAPH.imports_of(p))
        if GRAPH.family_of(target) is not None
    ]
    assert not leaks, "shared code must reach families through the registry:\n" + "\n".join(leaks)


def _mentions_a_model(node: ast.AST) -> bool:
    text = ast.unparse(node)
    return any(word in text for word in ("model", "served", "cls"))


def _is_kind_or_name(node: ast.AST) -> bool:
    """A data kind (`spec.kind`, `data.spec.kind`, `served.kind`) or a model's name
    (`model_name`, `saved["model"]`): what a comparison with a literal must not use (other
    kinds, e.g. a tokenizer's or a search-space entry's, are not the contract's)."""
    if isinstance(node, ast.Attribute) and node.attr == "kind":
        return any(word in ast.unparse(node.value) for word in ("spec", "served", "model", "data"))
    if isinstance(node, ast.Attribute) and node.attr == "model_name":
        return True
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return node.slice.value == "model"
    return isinstance(node, ast.Name) and node.id in ("model_name", "data_kind", "spec_kind")


def _string(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
    )


def test_shared_code_uses_protocols_not_duck_typing_or_names():
    found = []
    for path in SHARED:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "hasattr"
                and node.args
                and _mentions_a_model(node.args[0])
            ):
                found.append(f"{_where(path, node)}: {ast.unparse(node)}")
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                if any(map(_is_kind_or_name, sides)) and any(map(_string, sides)):
                    found.append(f"{_where(path, node)}: {ast.unparse(node)}")
    assert not found, "use a Protocol of genlab.contract or a DataSpec attribute:\n" + "\n".join(
        found
    )


# --- the registry against the protocols ------------------------------------------------------
# a method (or attribute) a model defines -> the protocol it must then satisfy in full
CLAIMS = {
    "sample_latent": (LatentSampler, LatentGenerator),  # batched serving, or PPL walks
    "decode_latent": LatentSampler,
    "step": TokenGenerator,
    "bind_data": RunAssets,
    "save_assets": RunAssets,
    "load_assets": RunAssets,
    "export": Exporter,
    "translate": Translator,
    "degrade": Restorer,
    "after_discriminator_step": CriticHook,
    "SampleOptions": HasSampleOptions,
    "presets": HasPresets,
    "quantizer": AudioModel,  # an audio model's WAVs, bits per sample (PixelCNN has its own
    # conditional_log_prob(x, labels), so that name claims nothing)
}


@pytest.mark.parametrize("name, i", CASES)
def test_every_model_is_each_protocol_it_claims(name, i):
    model, _ = build(name, i)
    cls = type(model)
    for member, protocol in CLAIMS.items():
        if any(member in vars(klass) for klass in cls.__mro__):
            assert isinstance(model, protocol), f"{name} defines {member} but is no {protocol}"
    if isinstance(model, CriticHook):
        assert isinstance(model, AdversarialModel), f"{name}: a critic hook without a critic"


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_declares_its_data_presets_and_trainer(name):
    cls = model_class(name)
    kinds = data_kinds(cls)
    assert kinds, f"{name} declares no data_kinds"
    assert set(kinds) <= set(MODALITIES), kinds  # kinds genlab.data.base knows
    assert isinstance(cls, HasPresets) and "gpu" in cls.presets, f"{name} has no gpu preset"
    assert isinstance(trainer_module(cls), Trainer)


@pytest.mark.parametrize("name", list(MODELS))
def test_sample_options_are_the_keywords_of_sample(name):
    """Every option of `sample` beyond n and generator is a SampleOptions field (that is where
    the CLI flags, the HTTP schema and the page's form come from), and each field reaches a
    keyword `sample` takes."""
    cls = model_class(name)
    options = sample_options(cls)
    assert dataclasses.is_dataclass(options)
    parameters = inspect.signature(cls.sample).parameters
    keywords = {
        p.name for p in parameters.values() if p.kind is p.KEYWORD_ONLY and p.name != "generator"
    }
    reached = {f.metadata.get("keyword") or f.name for f in dataclasses.fields(options)}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    assert keywords <= reached, f"{name}.sample takes {keywords - reached} with no option"
    assert takes_any or reached <= keywords, f"{name}: options {reached - keywords} go nowhere"
