"""Hugging Face GPT-2 interoperability: export genlab's GPT, import a local GPT-2 directory.

genlab's GPT with learned positions and biases has GPT-2's layout (pre-LayerNorm blocks, tanh
GELU, tied head, LayerNorm eps 1e-5), so the two are the same function and only the parameter
names and one convention differ: Hugging Face's GPT-2 uses `Conv1D` layers whose weight is the
transpose of `nn.Linear`'s ((in, out) instead of (out, in)).

- `export_gpt(model, folder)` writes `config.json` (a GPT2Config) and `model.safetensors` (the
  Hugging Face names), which `transformers.GPT2LMHeadModel.from_pretrained(folder)` loads with
  identical logits (tested). `transformers` is not needed to export.
- `import_gpt(folder)` reads such a folder (safetensors only: nothing is unpickled) into a
  genlab GPT, so training or generation can start from pretrained weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from genlab.errors import GenlabError
from genlab.text.gpt import GPT, GPTConfig

# Hugging Face Conv1D layers: their weight is our Linear weight transposed
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def _hf_name(name: str) -> str:
    return name if name == "lm_head.weight" else f"transformer.{name}"


def gpt2_config(config: GPTConfig) -> dict[str, Any]:
    """The GPT2Config (as config.json's dict) of a genlab GPT config."""
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_ctx": config.block_size,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": None,  # 4 n_embd
        "activation_function": "gelu_new",  # the tanh approximation
        "layer_norm_epsilon": 1e-5,
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": 0.0,  # genlab's attention has no dropout on the weights
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "tie_word_embeddings": True,
        "bos_token_id": 0,
        "eos_token_id": 0,
    }


def export_gpt(model: GPT, folder: str | Path) -> Path:
    """Write `model` as a Hugging Face GPT-2 folder (config.json, model.safetensors)."""
    from safetensors.torch import save_file

    from genlab.fileio import atomic_write, atomic_write_text

    cfg = model.config
    if cfg.positions != "learned" or not cfg.bias:
        raise GenlabError(
            "only GPTs with GPT-2's layout export to Hugging Face (positions=learned, bias=true)"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, value in model.state_dict().items():
        if name == "lm_head.weight":  # tied to the token embedding: GPT-2 re-ties it on load
            continue
        value = value.detach().cpu()
        tensors[_hf_name(name)] = (value.t() if name.endswith(CONV1D) else value).contiguous()
    atomic_write(
        folder / "model.safetensors",
        lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}),
    )
    atomic_write_text(folder / "config.json", json.dumps(gpt2_config(cfg), indent=2) + "\n")
    return folder


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
        hf_name = _hf_name(name)
        if hf_name not in weights and name in weights:  # saved without the "transformer." prefix
            hf_name = name
        if hf_name not in weights:
            raise GenlabError(f"{folder / 'model.safetensors'} has no tensor {hf_name!r}")
        value = weights[hf_name]
        state[name] = value.t() if name.endswith(CONV1D) else value
    state["lm_head.weight"] = state["wte.weight"]
    try:
        model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)
    except RuntimeError as e:
        raise GenlabError(f"GPT-2 weights do not fit: {str(e).splitlines()[0]}") from None
    return model.eval()
