import pytest
import torch
from torch import nn

from genlab.training.ema import EMA


def test_ema_follows_the_warmed_up_decay_exactly():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    ema = EMA(model, decay=0.9)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    for t in range(30):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        ema.update(model)
        d = min(0.9, (1 + t) / (10 + t))
        for k, v in model.state_dict().items():
            expected[k] = d * expected[k] + (1 - d) * v
    # the same float32 recurrence, perhaps in another order (lerp): an ulp or so per step
    for k in expected:
        torch.testing.assert_close(ema.state_dict()[k], expected[k])
    copy = nn.Linear(3, 2)
    ema.copy_to(copy)
    assert torch.equal(copy.weight, ema.state_dict()["weight"])


def test_ema_rejects_bad_decay():
    with pytest.raises(ValueError):
        EMA(nn.Linear(1, 1), decay=1.0)
