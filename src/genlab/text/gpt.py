"""GPT: a decoder-only transformer language model (Radford et al. 2018/2019; nanoGPT's layout).

Read bottom-up: attention, MLP, block, model. Per block (pre-LayerNorm, GPT-2):

    x = x + attn(ln_1(x))      causal multi-head self-attention (`scaled_dot_product_attention`)
    x = x + mlp(ln_2(x))       Linear(C, 4C) -> GELU (tanh approximation) -> Linear(4C, C)

then a final LayerNorm and the language-model head, whose weight is the token embedding's
(weight tying, Press & Wolf 2017). Positions are learned embeddings (GPT-2) or rotary
(`positions="rotary"`, Su et al. 2021: queries and keys rotated by their absolute position, so
attention scores depend on relative positions only). GPT-2's initialization: N(0, 0.02) weights,
zero biases, and the residual projections scaled by 1 / sqrt(2 n_layer).

`step(ids, cache)` is the generation interface (genlab.generation): it runs the T new
tokens after the ones the cache holds and returns their logits and the extended cache: per
layer, keys and values of shape (B, n_head, block_size, head_dim), allocated once and filled in
place (positions < P + T are valid), so no step copies the cache. With the cache each new
token costs one position's work instead of a re-read of the whole context; the tests check that
the cached logits equal the full forward pass to 1e-5 and that the generated tokens are the same.

With `bias=True`, learned positions and the tanh GELU the layout is GPT-2's, so the two are the
same function and only the parameter names and one convention differ: Hugging Face's GPT-2 uses
`Conv1D` layers whose weight is the transpose of `nn.Linear`'s ((in, out) instead of (out, in)).
`export(folder, "hf")` (contract.Exporter) writes a folder that
`transformers.GPT2LMHeadModel.from_pretrained` loads with identical logits (tested), with the
tokenizer beside it; genlab.text.hf reads such folders back (`transformers` is needed for
neither).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.errors import GenlabError
from genlab.text.base import LanguageModel

POSITIONS = ("learned", "rotary")
# Hugging Face Conv1D layers: their weight is our Linear weight transposed
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


@dataclass
class GPTConfig:
    vocab_size: int = 65  # from the data's tokenizer
    # the longest context; from the data's window (-o data.block_size=N). A pretrained model
    # (--init-from) reads windows up to it: the data's may be shorter ("fit", genlab.api)
    block_size: int = field(default=64, metadata={"fit": "at_least"})
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0  # small data and short runs: regularization costs more than it gives
    bias: bool = True  # biases in Linear and LayerNorm (GPT-2 has them)
    positions: str = "learned"  # "learned" (GPT-2) | "rotary"
    rope_base: float = 10000.0  # rotary: the base of the rotation frequencies

    def validate(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must divide by n_head ({self.n_head})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.positions not in POSITIONS:
            raise ValueError(
                f"positions must be one of {', '.join(POSITIONS)}, got {self.positions!r}"
            )
        if self.positions == "rotary" and (self.n_embd // self.n_head) % 2:
            raise ValueError("rotary positions need an even head size (n_embd / n_head)")


def rotate(x: Tensor, start: int, base: float) -> Tensor:
    """Rotary embedding of x (B, H, T, D) at absolute positions start .. start + T - 1: each
    pair (x[2i], x[2i+1]) is rotated by the angle position * base^(-2i / D)."""
    d, t = x.shape[-1], x.shape[-2]
    inv_freq = base ** (-torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d)
    angle = torch.arange(start, start + t, device=x.device, dtype=torch.float32)[:, None] * inv_freq
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)  # (T, D/2)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.dropout = cfg.n_head, cfg.dropout
        self.rotary = cfg.rope_base if cfg.positions == "rotary" else None
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # q, k, v at once
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(
        self, x: Tensor, buffers: tuple[Tensor, Tensor] | None, p: int, block_size: int | None
    ) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
        """x (B, T, C) at positions p .. p + T - 1. `buffers`: this layer's preallocated
        (keys, values) of shape (B, H, block_size, D) holding positions < p (None: nothing
        cached); `block_size`: allocate them when None (generation), or not at all (None:
        training). Returns the output and the buffers, now holding positions < p + T."""
        b, t, c = x.shape  # (B, T, C)
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        if self.rotary is not None:
            q, k = rotate(q, p, self.rotary), rotate(k, p, self.rotary)
        if buffers is None and block_size is not None:  # written in place, never concatenated
            shape = (b, self.n_head, block_size, k.shape[-1])
            buffers = (k.new_zeros(shape), v.new_zeros(shape))
        if buffers is not None:
            buffers[0][:, :, p : p + t] = k
            buffers[1][:, :, p : p + t] = v
            k, v = buffers[0][:, :, : p + t], buffers[1][:, :, : p + t]  # (B, H, P+T, D)
        dropout = self.dropout if self.training else 0.0
        if t == 1 and p > 0 and dropout == 0.0:
            # one new query that sees every cached key (a generation step): two small matmuls
            # are several times faster here than the fused kernel, whose set-up dominates
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.shape[-1]))  # (B, H, 1, P+1)
            y = scores.softmax(dim=-1) @ v
        else:
            if p == 0 or t == 1:  # square causal mask, or one query that may see every key
                mask, causal = None, p == 0
            else:  # query i sits at position p + i: it sees keys 0 .. p + i
                mask = torch.ones(t, p + t, dtype=torch.bool, device=x.device).tril(diagonal=p)
                causal = False
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=causal
            )  # (B, H, T, D)
        y = y.transpose(1, 2).contiguous().view(b, t, c)
        return self.resid_dropout(self.c_proj(y)), buffers


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(
        self, x: Tensor, buffers: Any, p: int, block_size: int | None
    ) -> tuple[Tensor, Any]:
        a, buffers = self.attn(self.ln_1(x), buffers, p, block_size)
        x = x + a
        return x + self.mlp(self.ln_2(x)), buffers


class GPT(LanguageModel):
    Config = GPTConfig
    # nanoGPT's CPU model, trained harder: batches of 32 windows, lr 5e-3, beta2 0.99 (about
    # 2 minutes on the 2-core CPU; bench/text_shakespeare.py)
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 880,
        "lr": 5e-3,
        "batch_size": 32,
        "warmup_steps": 100,
        "betas": (0.9, 0.99),
    }

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # nanoGPT's shakespeare-char GPU setting: 6 layers, 6 heads, 384 wide, 256 tokens
        "gpu": {
            "model_config": {"n_layer": 6, "n_head": 6, "n_embd": 384, "dropout": 0.2},
            "train": {"steps": 5000, "batch_size": 64, "lr": 1e-3, "warmup_steps": 100},
            "data": {"options": {"block_size": 256}},
        }
    }

    def __init__(self, config: GPTConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.block_size = config.block_size
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = (
            nn.Embedding(config.block_size, config.n_embd)
            if config.positions == "learned"
            else None
        )
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled down
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def step(self, ids: Tensor, cache: dict | None = None) -> tuple[Tensor, dict]:
        """ids (B, T) after the P tokens in `cache` -> (logits (B, T, V), the new cache): per
        layer, keys and values preallocated for `block_size` positions, and their length P."""
        return self._forward(ids, cache, keep=True)

    def logits(self, ids: Tensor) -> Tensor:
        """ids (B, T) -> (B, T, V): the next-token logits at every position (training: no
        cache is built)."""
        return self._forward(ids, None, keep=False)[0]

    def _forward(self, ids: Tensor, cache: dict | None, keep: bool) -> tuple[Tensor, Any]:
        p = 0 if cache is None else cache["length"]
        t = ids.shape[1]
        if p + t > self.block_size:
            raise ValueError(
                f"context of {p + t} tokens is longer than block_size {self.block_size}"
            )
        x = self.wte(ids)  # (B, T, C)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(p, p + t, device=ids.device))
        x = self.drop(x)
        allocate = self.block_size if keep else None
        layers = []
        for i, block in enumerate(self.h):
            x, buffers = block(x, None if cache is None else cache["layers"][i], p, allocate)
            layers.append(buffers)
        return self.lm_head(self.ln_f(x)), {"layers": layers, "length": p + t}

    export_formats: ClassVar[tuple[str, ...]] = ("hf",)

    def export(self, folder: Path, format: str) -> None:
        """Write the model in another library's layout, with its tokenizer when one is bound:
        "hf" = a Hugging Face GPT-2 folder (config.json, model.safetensors; genlab's
        tokenizer as genlab_tokenizer.json and as the tokenizer.json transformers reads)."""
        if format not in self.export_formats:
            known = ", ".join(repr(f) for f in self.export_formats)
            raise ValueError(
                f"{type(self).__name__} exports to format {known} only, got {format!r}"
            )
        folder = Path(folder)
        write_gpt2(self, folder)
        if self.tokenizer is not None:
            from genlab.tokenizers import save_hugging_face, save_tokenizer

            save_tokenizer(self.tokenizer, folder / "genlab_tokenizer.json")
            save_hugging_face(self.tokenizer, folder)  # as transformers' AutoTokenizer reads it


# --- GPT-2's layout (Hugging Face) ------------------------------------------------------------
def hf_name(name: str) -> str:
    """The Hugging Face GPT2LMHeadModel name of a genlab GPT parameter."""
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


def write_gpt2(model: GPT, folder: Path) -> None:
    """Write `model` as a Hugging Face GPT-2 folder (config.json, model.safetensors)."""
    from safetensors.torch import save_file

    from genlab.fileio import atomic_write, atomic_write_text

    cfg = model.config
    if cfg.positions != "learned" or not cfg.bias:
        raise GenlabError(
            "only GPTs with GPT-2's layout export to Hugging Face (positions=learned, bias=true)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, value in model.state_dict().items():
        if name == "lm_head.weight":  # tied to the token embedding: GPT-2 re-ties it on load
            continue
        value = value.detach().cpu()
        tensors[hf_name(name)] = (value.t() if name.endswith(CONV1D) else value).contiguous()
    atomic_write(
        folder / "model.safetensors",
        lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}),
    )
    atomic_write_text(folder / "config.json", json.dumps(gpt2_config(cfg), indent=2) + "\n")
