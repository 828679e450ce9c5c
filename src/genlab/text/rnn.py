"""Recurrent language models: one class, three cells (`RNNConfig.cell`).

Embedding -> a multi-layer recurrent network (dropout between layers) -> dropout -> a linear
head to the vocabulary, whose weight is the embedding's when `tie_weights` (Press & Wolf 2017;
the embedding then has the hidden size). The recurrence is the only thing the cells change, so
the cell is a config value mapped to PyTorch's fused layer (the registry's "rnn", "gru" and
"lstm" are this class with `cell` set, registry.MODELS):

- "rnn", a vanilla (Elman 1990) RNN: h' = tanh(W x + U h + b). The tanh squashes the state,
  and the gradients through it, at every step.
- "gru" (Cho et al. 2014): r = sigmoid(W_r x + U_r h), z = sigmoid(W_z x + U_z h),
  n = tanh(W_n x + r * (U_n h)), h' = (1 - z) * n + z * h. The update gate z lets the state
  pass through many steps unchanged (gradients too).
- "lstm" (Hochreiter & Schmidhuber 1997; Zaremba et al. 2014's multi-layer setting with
  dropout): gates i, f, o = sigmoid(W x + U h + b), g = tanh(W_g x + U_g h + b_g),
  c' = f * c + i * g, h' = o * tanh(c'). The cell state c is updated additively, so information
  and gradients survive long spans. Its state is the pair (h, c) of every layer, which
  `nn.LSTM` takes and returns as one value, so `step` carries it like the others' h.

Generation (`step(ids, state)`, genlab.generation) carries the hidden state from one token
to the next instead of re-reading the context: one recurrent step per new token. An RNN has no
context limit (`block_size` is None); the data's window only sets how far back gradients flow
in training (truncated backpropagation through time, one window per example, state reset to
zero at each window).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from torch import Tensor, nn

from genlab.text.base import LanguageModel

CELLS: dict[str, type[nn.Module]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}

# What each cell trains well with on the CPU. The LSTM: 2 layers of 256, batches of 128 windows
# of 64 characters, lr 6e-3, beta2 0.99, about 3 minutes on the 2-core CPU
# (bench/text_shakespeare.py).
TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "rnn": {"steps": 2000, "lr": 2e-3, "batch_size": 32},
    "gru": {"steps": 2000, "lr": 2e-3, "batch_size": 32},
    "lstm": {
        "steps": 320,
        "lr": 6e-3,
        "batch_size": 128,
        "warmup_steps": 50,
        "betas": (0.9, 0.99),
    },
}


@dataclass
class RNNConfig:
    vocab_size: int = 65  # from the data's tokenizer
    # the training window (from the data; a pretrained model's may be longer: "fit",
    # genlab.api); generation is unbounded
    block_size: int = field(default=64, metadata={"fit": "at_least"})
    n_layer: int = 2
    hidden: int = 256
    n_embd: int = 256  # embedding size; must equal hidden when tie_weights
    dropout: float = 0.0
    tie_weights: bool = True
    cell: Literal["rnn", "gru", "lstm"] = "rnn"  # the recurrence (see the module docstring)

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
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}")


class RNN(LanguageModel):
    Config = RNNConfig
    block_size = None  # no context limit
    # the default cell's; a variant's are `train_defaults_for(config)`
    train_defaults: ClassVar[dict[str, Any]] = TRAIN_DEFAULTS["rnn"]

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # char-rnn's large setting for a GPU (every cell): 2 layers of 1024, dropout, long windows
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
        self.rnn = CELLS[config.cell](
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

    @classmethod
    def train_defaults_for(cls, config: RNNConfig) -> dict[str, Any]:
        """The TrainConfig values a model of `config` trains well with: its cell's."""
        return dict(TRAIN_DEFAULTS[config.cell])

    def step(self, ids: Tensor, cache: Any = None) -> tuple[Tensor, Any]:
        """ids (B, T) after the state `cache` (None: zeros; the LSTM's: (h, c)) -> (logits
        (B, T, V), new state)."""
        out, state = self.rnn(self.drop(self.embedding(ids)), cache)  # (B, T, hidden)
        return self.head(self.drop(out)), state
