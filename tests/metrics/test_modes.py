"""Mode coverage on the 8-Gaussians toy: exact counts on constructed samples."""

from __future__ import annotations

import pytest
import torch

from genlab.data import load_dataset
from genlab.metrics.modes import EIGHT_GAUSSIAN_STD, eight_gaussian_centres, mode_coverage


def test_real_data_covers_every_mode_with_high_quality():
    data = load_dataset("toy2d:8gaussians", "test")
    x = data.batch(torch.arange(len(data)))
    out = mode_coverage(x, eight_gaussian_centres(), EIGHT_GAUSSIAN_STD)
    assert out["modes_covered"] == 8
    assert out["high_quality"] > 0.98  # 3 std in 2-D holds 98.9% of a Gaussian's mass
    assert out["kl_modes"] < 0.01


def test_a_collapsed_generator_covers_one_mode():
    centres = eight_gaussian_centres()
    x = centres[3].float() + 0.05 * torch.randn(1000, 2)
    out = mode_coverage(x, centres, EIGHT_GAUSSIAN_STD)
    assert out["modes_covered"] == 1 and out["high_quality"] == 1.0
    assert out["kl_modes"] == pytest.approx(torch.log(torch.tensor(8.0)).item())


def test_samples_between_modes_are_low_quality_and_cover_nothing():
    x = torch.zeros(400, 2)  # the centre of the ring: 2.83 from every mode, > 3 std
    out = mode_coverage(x, eight_gaussian_centres(), EIGHT_GAUSSIAN_STD)
    assert out["modes_covered"] == 0 and out["high_quality"] == 0.0


def test_min_count_decides_coverage():
    centres = eight_gaussian_centres()
    x = torch.cat([centres[0].repeat(30, 1), centres[1].repeat(5, 1)]).float()
    assert mode_coverage(x, centres, 0.1, min_count=10)["modes_covered"] == 1
    assert mode_coverage(x, centres, 0.1, min_count=5)["modes_covered"] == 2
