"""The opt-in speed paths give the same results as the default path."""

import warnings

import torch
from toy import Toy, ToyConfig, toy_data

from genlab.training.loop import _compiled, _LossModule, autocast_context


def test_compiled_loss_equals_eager_loss():
    torch.manual_seed(0)
    model = Toy(ToyConfig(noise=0.0)).eval()
    batch = toy_data(32).batch(torch.arange(32))
    eager = _LossModule(model)(batch)["loss"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = _compiled(_LossModule(model), True)(batch)["loss"]
    # a fallback to eager would make this test pass vacuously
    assert not [w for w in caught if "torch.compile failed" in str(w.message)]
    # Inductor may fuse and reorder the float32 sums: a mean of 32 squared errors moves by a few
    # ulps (~log2(32) eps = 6e-7 relative); 1e-5 is 15x that (measured: 1/75 of it)
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)


def test_bf16_autocast_is_close_to_fp32_on_cpu():
    torch.manual_seed(0)
    model = Toy(ToyConfig(noise=0.0)).eval()
    batch = toy_data(32).batch(torch.arange(32))
    fp32 = model.loss(batch)["loss"]
    with autocast_context(torch.device("cpu"), "bf16"):
        bf16 = model.loss(batch)["loss"]
    assert bf16.dtype == torch.float32 or bf16.dtype == torch.bfloat16
    # bf16 keeps 8 bits (2^-9 = 0.2% per rounding), ~6 roundings to the loss: ~1.2%; 3% holds
    torch.testing.assert_close(bf16.float(), fp32, rtol=3e-2, atol=1e-2)
