"""A recurrent language model with a vanilla (Elman) RNN: h_t = tanh(W x_t + U h_{t-1} + b).

Embedding -> a multi-layer recurrent network (dropout between layers) -> dropout -> a linear
head to the vocabulary, whose weight is the embedding's when `tie_weights` (Press & Wolf 2017;
the embedding then has the hidden size). The recurrent layers are PyTorch's fused
`nn.RNN`/`nn.GRU`/`nn.LSTM`; `gru.py` and `lstm.py` reuse this file's model with their own cell
and defaults (the recurrence is the only difference).

Generation (`step(ids, state)`, genlab.text.generation) carries the hidden state from one token
to the next instead of re-reading the context: one recurrent step per new token. An RNN has no
context limit (`block_size` is None); the data's window only sets how far back gradients flow
in training (truncated backpropagation through time, one window per example, state reset to
zero at each window).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from genlab.text.base import LanguageModel


@dataclass
class RNNConfig:
    vocab_size: int = 65  # from the data's tokenizer
    block_size: int = 64  # the training window (from the data); generation is unbounded
    n_layer: int = 2
    hidden: int = 256
    n_embd: int = 256  # embedding size; must equal hidden when tie_weights
    dropout: float = 0.0
    tie_weights: bool = True

    def validate(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "hidden", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.tie_weights and self.n_embd != self.hidden:
            raise ValueError(
                f"tie_weights needs n_embd == hidden (got {self.n_embd} and {self.hidden})"
            )


class RNN(LanguageModel):
    Config = RNNConfig
    cell: ClassVar[type[nn.Module]] = nn.RNN  # tanh; GRU and LSTM swap this
    block_size = None  # no context limit
    train_defaults: ClassVar[dict[str, Any]] = {"steps": 2000, "lr": 2e-3, "batch_size": 32}

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # char-rnn's large setting for a GPU: 2 layers of 1024, dropout, long windows
        "gpu": {
            "model_config": {"n_layer": 2, "hidden": 1024, "n_embd": 1024, "dropout": 0.25},
            "train": {"steps": 10000, "batch_size": 64, "lr": 2e-3, "warmup_steps": 100},
            "data": {"options": {"block_size": 256}},
        }
    }

    def __init__(self, config: RNNConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.n_embd)
        self.rnn = self.cell(
            config.n_embd,
            config.hidden,
            num_layers=config.n_layer,
            dropout=config.dropout if config.n_layer > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.vocab_size)
        if config.tie_weights:
            self.head.weight = self.embedding.weight

    def step(self, ids: Tensor, cache: Any = None) -> tuple[Tensor, Any]:
        """ids (B, T) after the state `cache` (None: zeros) -> (logits (B, T, V), new state)."""
        out, state = self.rnn(self.drop(self.embedding(ids)), cache)  # (B, T, hidden)
        return self.head(self.drop(out)), state
