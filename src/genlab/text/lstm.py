"""An LSTM language model (Hochreiter & Schmidhuber 1997; Zaremba et al. 2014's multi-layer
setting with dropout): the RNN language model of `rnn.py` with LSTM cells,

    i, f, o = sigmoid(W x + U h + b) (three gates),  g = tanh(W_g x + U_g h + b_g)
    c' = f * c + i * g,  h' = o * tanh(c')

The cell state c is updated additively, so information and gradients survive long spans; the
state carried through generation is the pair (h, c) of every layer.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from genlab.text.rnn import RNN, RNNConfig


class LSTM(RNN):
    Config = RNNConfig
    cell: ClassVar[type[nn.Module]] = nn.LSTM
    # 2 layers of 256, batches of 128 windows of 64 characters, lr 6e-3, beta2 0.99: about
    # 3 minutes on the 2-core CPU (bench/text_shakespeare.py)
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 320,
        "lr": 6e-3,
        "batch_size": 128,
        "warmup_steps": 50,
        "betas": (0.9, 0.99),
    }
