"""A GRU language model (Cho et al. 2014): the RNN language model of `rnn.py` with gated
recurrent units,

    r = sigmoid(W_r x + U_r h),  z = sigmoid(W_z x + U_z h)
    n = tanh(W_n x + r * (U_n h)),  h' = (1 - z) * n + z * h

whose update gate z lets the state pass through many steps unchanged (gradients too), where a
vanilla RNN's tanh squashes them at every step.
"""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from genlab.text.rnn import RNN, RNNConfig


class GRU(RNN):
    Config = RNNConfig
    cell: ClassVar[type[nn.Module]] = nn.GRU
