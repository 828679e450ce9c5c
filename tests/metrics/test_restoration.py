"""PSNR, SSIM and the Y channel of the restoration protocol (genlab.metrics.restoration)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlab.image2image.espcn import ESPCN, ESPCNConfig
from genlab.metrics.restoration import (
    luma,
    psnr,
    restoration_metrics,
    rgb_to_ycbcr,
    ssim,
    y_channel_255,
    ycbcr_to_rgb,
)


def test_psnr_against_a_hand_computation():
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    b[0, 0] = 16.0  # MSE = 16^2 / 16 = 16 -> PSNR = 10 log10(255^2 / 16)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 16), abs=1e-12)
    assert psnr(a, b) == pytest.approx(36.0896, abs=1e-4)  # 10 log10(4064.0625)
    assert psnr(a, a) == math.inf
    assert psnr(a / 255, b / 255, data_range=1.0) == pytest.approx(psnr(a, b), abs=1e-9)


def test_ssim_is_one_for_identical_images_and_matches_scikit_image():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a = rng.uniform(16, 235, (40, 50))
    b = np.clip(a + rng.normal(0, 10, a.shape), 0, 255)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    expected = structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert ssim(a, b) == pytest.approx(expected, abs=1e-12)
    assert 0 < ssim(a, b) < 0.99  # the noise is seen
    # the standard settings, not skimage's defaults (7x7 uniform window, sample covariance)
    assert ssim(a, b) != pytest.approx(structural_similarity(a, b, data_range=255), abs=1e-4)


def test_y_channel_is_matlab_rgb2ycbcr():
    # black, white, pure red, green and blue: Y = 16 + (65.481 R + 128.553 G + 24.966 B)
    rgb = torch.tensor(
        [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64
    ).T.reshape(1, 3, 1, 5)
    expected_y = torch.tensor([16.0, 235.0, 81.481, 144.553, 40.966], dtype=torch.float64)
    assert torch.allclose(luma(rgb)[0, 0, 0] * 255, expected_y, atol=1e-9)
    ycbcr = rgb_to_ycbcr(rgb) * 255
    assert torch.allclose(ycbcr[0, 0, 0], expected_y, atol=1e-9)
    assert torch.allclose(ycbcr[0, 1:, 0, :2], torch.full((2, 2), 128.0, dtype=ycbcr.dtype))
    assert ycbcr[0, 2, 0, 2] == pytest.approx(240.0)  # Cr of pure red: 128 + 112
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-12)


def test_grey_images_have_the_luma_of_their_rgb_repetition():
    grey = torch.rand(2, 1, 5, 6, dtype=torch.float64)
    assert torch.allclose(luma(grey), luma(grey.expand(-1, 3, -1, -1)), atol=1e-12)


def test_y_channel_of_an_image_rounds_to_8_bits_and_crops_the_border():
    image = torch.full((3, 10, 12), 0.5004)  # rounds to level 128
    y = y_channel_255(image, crop=3)
    assert y.shape == (4, 6)
    assert np.allclose(y, 16 + 219 * 128 / 255)


@pytest.fixture(scope="module")
def tiny_espcn():
    torch.manual_seed(0)
    return ESPCN(ESPCNConfig(data_shape=(3, 24, 24), scale=2, n1=4, n2=4)).eval()


def test_restoration_metrics_of_the_bicubic_baseline_by_hand(tiny_espcn):
    torch.manual_seed(1)
    images = [torch.rand(3, 21, 26), torch.rand(3, 16, 16)]  # 21 x 26: cropped to 20 x 26
    found = restoration_metrics(tiny_espcn, images, lpips=None)
    by_hand = []
    for x in images:
        x = x[None, :, :20, :26] if x.shape[1] == 21 else x[None]
        bicubic = tiny_espcn.baseline(tiny_espcn.degrade(x))
        by_hand.append(psnr(y_channel_255(bicubic[0], 2), y_channel_255(x[0], 2)))
    assert found["psnr_y_baseline"] == pytest.approx(np.mean(by_hand), abs=1e-9)
    assert found["images"] == 2 and found["crop_border"] == 2
    assert found["lpips"] is None and found["lpips_baseline"] is None
    for key in ("psnr_y", "ssim_y", "ssim_y_baseline"):
        assert math.isfinite(found[key])


def test_an_exactly_restored_image_counts_as_the_psnr_cap(tiny_espcn):
    flat = torch.full((3, 16, 16), 128 / 255)  # bicubic restores a flat image exactly
    found = restoration_metrics(tiny_espcn, [flat, torch.rand(3, 16, 16)], lpips=None)
    assert found["ssim_y_baseline"] < 1
    assert 100 > found["psnr_y_baseline"] > 50  # the mean of 100 and a finite PSNR
    alone = restoration_metrics(tiny_espcn, [flat], lpips=None)
    assert alone["psnr_y_baseline"] == 100.0


def test_images_too_small_for_the_ssim_window_are_refused_in_one_line(tiny_espcn):
    from genlab.errors import GenlabError

    with pytest.raises(GenlabError, match="at least 15 x 15 pixels"):  # 11 + 2 x crop 2
        restoration_metrics(tiny_espcn, [torch.rand(3, 14, 20)], lpips=None)


def test_lpips_is_unavailable_offline_and_computed_with_a_given_network(tiny_espcn):
    from genlab.metrics.vgg import LPIPS

    images = [torch.rand(3, 40, 40)]
    offline = restoration_metrics(tiny_espcn, images)  # no pretrained files in the tests
    assert offline["lpips"] is None and offline["lpips_weights"].startswith("unavailable")
    torch.manual_seed(0)
    distance = LPIPS().eval()
    for lin in distance.lins():  # non-negative heads, as trained LPIPS heads are
        torch.nn.init.constant_(lin.model[1].weight, 0.1)
    given = restoration_metrics(tiny_espcn, images, lpips=distance)
    assert given["lpips"] > 0 and given["lpips_baseline"] > 0
    assert given["lpips"] != given["lpips_baseline"]
