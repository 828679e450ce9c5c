"""Autoregressive image models: PixelCNN, Gated PixelCNN and PixelRNN (Row LSTM, Diagonal BiLSTM).

base.py holds what they share (causal masks, Bernoulli / 256-way softmax outputs, exact
log-likelihood, the naive and the fast sampler); one file per model. docs/autoregressive.md
explains the chain rule, the masks, the blind spot and the samplers.
"""
