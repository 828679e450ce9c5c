"""The language models against genlab.contract: one RNN class whose cells are registry variants
(old runs load as the variant they were, with the same weight names), the tokenizer as a run
asset, GPT as an Exporter, the sample options, and generate_run."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from genlab.contract import (
    Exporter,
    HasSampleOptions,
    RunAssets,
    TokenGenerator,
    option_fields,
    sample_keywords,
)
from genlab.data import load_dataset
from genlab.errors import GenlabError
from genlab.generation import GenerationConfig, complete_text, generate_run
from genlab.registry import config_from, default_config, model_class
from text_corpus import CORPUS  # no download needed

# config.json's model_config of an RNN, GRU or LSTM run saved before `cell` existed
SAVED = {"vocab_size": 23, "block_size": 16, "n_layer": 2, "hidden": 12, "n_embd": 12}
SAVED |= {"dropout": 0.0, "tie_weights": True}
GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # rows of weight_ih per hidden unit: the cell's layout
WEIGHT_NAMES = ["embedding.weight"]
WEIGHT_NAMES += [
    f"rnn.{w}_{k}_l{i}" for i in (0, 1) for w in ("weight", "bias") for k in ("ih", "hh")
]
WEIGHT_NAMES = sorted([*WEIGHT_NAMES, "head.weight", "head.bias"])


@pytest.fixture(scope="module")
def text_data():
    return load_dataset(CORPUS, "val", block_size=16)


def tiny_gpt(vocab_size: int):
    torch.manual_seed(0)
    config = config_from("gpt", {"vocab_size": vocab_size, "n_layer": 1, "n_head": 2, "n_embd": 8})
    return model_class("gpt")(config).eval()


@pytest.mark.parametrize("name", ["rnn", "gru", "lstm"])
def test_a_saved_config_without_cell_loads_as_its_variant_with_the_same_weights(name):
    assert model_class(name) is model_class("rnn")
    assert default_config(name).cell == name
    config = config_from(name, SAVED)
    assert config.cell == name
    model = model_class(name)(config)
    state = model.state_dict()
    assert sorted(state) == WEIGHT_NAMES
    assert state["rnn.weight_ih_l0"].shape == (GATES[name] * 12, 12)
    model_class(name)(config_from(name, SAVED)).load_state_dict(state, strict=True)
    assert isinstance(model.rnn, {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[name])


def test_each_cell_keeps_its_train_defaults():
    cls = model_class("rnn")
    lstm = cls.train_defaults_for(default_config("lstm"))
    assert lstm == {
        "steps": 320,
        "lr": 6e-3,
        "batch_size": 128,
        "warmup_steps": 50,
        "betas": (0.9, 0.99),
    }
    for name in ("rnn", "gru"):
        assert cls.train_defaults_for(default_config(name)) == cls.train_defaults
    assert cls.train_defaults == {"steps": 2000, "lr": 2e-3, "batch_size": 32}
    with pytest.raises(ValueError, match="cell must be one of rnn, gru, lstm"):
        cls(dataclasses.replace(default_config("rnn"), cell="transformer"))


def test_the_tokenizer_is_a_run_asset(text_data, tmp_path):
    spec = text_data.spec
    model = tiny_gpt(spec.vocab_size)
    assert isinstance(model, RunAssets) and isinstance(model, TokenGenerator)
    assert model.tokenizer is None  # until bound
    model.bind_data(spec)
    assert model.tokenizer is spec.extra["tokenizer"]
    model.save_assets(tmp_path)
    loaded = tiny_gpt(spec.vocab_size)
    loaded.load_assets(tmp_path)
    assert loaded.tokenizer.encode("ROMEO: hi") == model.tokenizer.encode("ROMEO: hi")
    tokenizer_file = str((tmp_path / "tokenizer.json").resolve())
    assert type(model).data_options(tmp_path) == {"tokenizer": tokenizer_file}
    empty = tmp_path / "empty"
    empty.mkdir()
    bare = tiny_gpt(spec.vocab_size)
    bare.load_assets(empty)
    assert bare.tokenizer is None
    with pytest.raises(GenlabError, match="has no tokenizer to read the text with"):
        type(model).data_options(empty)


def test_gpt_exports_itself_and_its_tokenizer_and_loads_back(text_data, tmp_path):
    from genlab.text.hf import load_source

    model = tiny_gpt(text_data.spec.vocab_size)
    model.bind_data(text_data.spec)
    assert isinstance(model, Exporter) and model.export_formats == ("hf",)
    with pytest.raises(ValueError, match="format 'hf' only, got 'onnx'"):
        model.export(tmp_path / "x", "onnx")
    folder = tmp_path / "hf"
    model.export(folder, "hf")
    names = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}
    assert names | {"genlab_tokenizer.json"} <= {p.name for p in folder.iterdir()}
    back = load_source(str(folder))
    ids = torch.tensor([model.tokenizer.encode("ROMEO: what light")])
    with torch.no_grad():
        assert torch.allclose(back.logits(ids), model.logits(ids), atol=1e-6)
    assert back.tokenizer is None
    back.load_assets(folder)
    assert back.tokenizer.encode("KING HENRY") == model.tokenizer.encode("KING HENRY")
    assert type(back).data_options(folder) == {"tokenizer": str(folder.resolve())}


@pytest.mark.parametrize("name", ["gpt", "lstm"])
def test_sample_options_are_checked_and_reach_sample(name):
    model = model_class(name)(config_from(name, {"vocab_size": 11, "block_size": 8})).eval()
    assert isinstance(model, HasSampleOptions)
    assert all(f.metadata["help"] for f in option_fields(model))
    with pytest.raises(ValueError, match="temperature must be a number >= 0"):
        sample_keywords(model, {"temperature": -0.5})
    with pytest.raises(ValueError, match="max_new_tokens must be a number >= 1"):
        sample_keywords(model, {"max_new_tokens": 0})
    keywords = sample_keywords(model, {"max_new_tokens": 5, "temperature": 0.0})
    assert model.sample(2, generator=torch.Generator().manual_seed(0), **keywords).shape == (2, 5)


def test_generate_run_streams_a_language_model_and_refuses_others(text_data, monkeypatch):
    import genlab.api

    model = tiny_gpt(text_data.spec.vocab_size)
    for other in (nn.Linear(2, 2), model):  # not a TokenGenerator; no tokenizer
        monkeypatch.setattr(genlab.api, "load", lambda *a, other=other, **k: other)
        with pytest.raises(GenlabError, match=r"RUN is not a language model run .*try sample"):
            generate_run("RUN", "ROMEO:")
    model.bind_data(text_data.spec)
    monkeypatch.setattr(genlab.api, "load", lambda *a, **k: model)
    text = "".join(generate_run("RUN", "ROMEO:", max_new_tokens=12, seed=1))
    expected = GenerationConfig(max_new_tokens=12, seed=1)
    assert text == complete_text(model, model.tokenizer, "ROMEO:", expected)
