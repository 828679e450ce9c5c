"""Hugging Face GPT-2 folders as genlab models: `hf:DIR` (genlab.load, --init-from, generate).

genlab's GPT with learned positions and biases has GPT-2's layout (genlab.text.gpt, which also
writes such folders: `GPT.export(folder, "hf")`), so a local Hugging Face GPT-2 folder reads
into a genlab GPT with identical logits:

- `import_gpt(folder)` reads `config.json` and `model.safetensors` (safetensors only: nothing is
  unpickled) into a genlab GPT, so training or generation can start from pretrained weights;
  `transformers` is not needed.
- `load_source(rest)` is the registry's "hf" source (registry.SOURCES): `genlab.load("hf:DIR")`
  calls it with "DIR", then reads the folder's tokenizer with the model's `load_assets`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from genlab.errors import GenlabError
from genlab.text.gpt import CONV1D, GPT, GPTConfig, hf_name


def load_source(rest: str) -> GPT:
    """The GPT of the Hugging Face GPT-2 folder `rest` (the DIR of an `hf:DIR` source)."""
    return import_gpt(Path(rest).expanduser())


def import_gpt(folder: str | Path) -> GPT:
    """A genlab GPT with the weights of a local Hugging Face GPT-2 folder (config.json and
    model.safetensors), loaded strictly."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        hf = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise GenlabError(
            f"{folder} is not a Hugging Face model folder: config.json: {e}"
        ) from None
    if hf.get("model_type") != "gpt2":
        raise GenlabError(f"{folder} holds a {hf.get('model_type')!r} model, not GPT-2")
    if hf.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
        raise GenlabError(f"unsupported GPT-2 activation {hf['activation_function']!r}")
    if hf.get("n_inner") not in (None, 4 * hf["n_embd"]):
        raise GenlabError("unsupported GPT-2 n_inner (genlab's MLP is 4 n_embd wide)")
    config = GPTConfig(
        vocab_size=hf["vocab_size"],
        block_size=hf["n_positions"],
        n_layer=hf["n_layer"],
        n_head=hf["n_head"],
        n_embd=hf["n_embd"],
        dropout=0.0,
        bias=True,
        positions="learned",
    )
    try:
        weights = load_file(str(folder / "model.safetensors"))
    except (OSError, SafetensorError) as e:
        raise GenlabError(f"cannot read {folder / 'model.safetensors'}: {e}") from None
    model = GPT(config)
    state = {}
    for name in model.state_dict():
        if name == "lm_head.weight":
            continue
        theirs = hf_name(name)
        if theirs not in weights and name in weights:  # saved without the "transformer." prefix
            theirs = name
        if theirs not in weights:
            raise GenlabError(f"{folder / 'model.safetensors'} has no tensor {theirs!r}")
        value = weights[theirs]
        state[name] = value.t() if name.endswith(CONV1D) else value
    state["lm_head.weight"] = state["wte.weight"]
    try:
        model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)
    except RuntimeError as e:
        raise GenlabError(f"GPT-2 weights do not fit: {str(e).splitlines()[0]}") from None
    return model.eval()
