"""`train --compile`: every loss the likelihood loop compiles traces as one graph.

A graph break (a `.item()`, `bool(tensor)` or `float(tensor)` in the loss) splits the compiled
loss in pieces, prints torch's warning and, on a GPU, is a host-device sync every step. Dynamo
traces each tiny config with `fullgraph=True`, which raises at the first break, after one eager
call has done any data-dependent initialisation (ActNorm, the VampPrior's pseudo-inputs), as
the loop's first step does. The "eager" backend runs the traced operations as they are, so
the compiled loss equals the eager one; inductor's own numbers are tested in
tests/training/test_speed_paths.py and tests/vae/test_vae.py.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genlab.contract import SurrogateObjective, trainer_module
from genlab.training.loop import _LossModule
from test_contract import CASES, build, first_batch

# torch.compile does not trace nn.RNN/GRU/LSTM (torch._dynamo.config.allow_rnn is off): their
# cuDNN/ATen kernel runs eagerly between two graphs, a break the models cannot remove.
RNN_MODULES = {"rnn", "gru", "lstm", "musicvae", "musicvae-16bar", "musicvae-16bar-flat"}


def compiled_by_its_loop(model) -> bool:
    loop = trainer_module(type(model))
    return "compile" in {f.name for f in dataclasses.fields(loop.TrainConfig)}


@pytest.mark.parametrize("name, i", CASES)
def test_the_training_loss_compiles_to_one_graph_with_the_eager_value(name, i):
    model, data = build(name, i)
    if not compiled_by_its_loop(model):
        pytest.skip(f"{name}'s loop has no --compile")
    if name in RNN_MODULES:
        pytest.skip("dynamo does not trace nn.RNN/GRU/LSTM")
    if isinstance(model, SurrogateObjective):
        pytest.skip("its loss generates tokens one by one with a torch.Generator: no one graph")
    model.train()
    batch = first_batch(data)
    torch.manual_seed(0)
    model.loss(batch)  # the first step: data-dependent initialisation, eagerly
    torch._dynamo.reset()
    compiled = torch.compile(_LossModule(model), backend="eager", fullgraph=True)
    torch.manual_seed(1)
    got = compiled(batch)
    torch.manual_seed(1)
    expected = model.loss(batch)
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-6, atol=1e-7)
