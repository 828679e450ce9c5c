"""Helpers shared by the metric tests."""

from __future__ import annotations

import torch
from torch import nn


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights that keep activations O(1) through deep nets (He init, random BN stats)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, nn.Conv2d | nn.Linear):
                fan_in = sub.weight[0].numel()
                sub.weight.copy_(
                    torch.randn(sub.weight.shape, generator=generator) * (2 / fan_in) ** 0.5
                )
                if sub.bias is not None:
                    sub.bias.copy_(torch.randn(sub.bias.shape, generator=generator) * 0.1)
            elif isinstance(sub, nn.BatchNorm2d):
                shape = sub.running_mean.shape
                sub.running_mean.copy_(torch.randn(shape, generator=generator) * 0.1)
                sub.running_var.copy_(torch.rand(shape, generator=generator) + 0.5)
                sub.weight.copy_(torch.rand(shape, generator=generator) + 0.5)
                sub.bias.copy_(torch.randn(shape, generator=generator) * 0.1)
    return module.eval()
