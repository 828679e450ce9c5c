"""TF1 bilinear resizing and Perceptual Path Length (analytic cases)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlab.errors import GenlabError
from genlab.metrics.imageops import area_downsample, quantize_uint8, resize_bilinear_tf1
from genlab.metrics.ppl import (
    LatentGenerator,
    StyleGenerator,
    model_ppl_callables,
    path_lengths,
    percentile_filter,
    perceptual_path_length,
    slerp,
)


# --- image operations ---------------------------------------------------------------------------
def tf1_reference(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """TensorFlow 1's resize_bilinear (align_corners=False), one pixel at a time."""
    h, w = image.shape
    out = np.zeros((out_h, out_w), dtype=np.float64)
    for i in range(out_h):
        y = i * (h / out_h)
        y0 = math.floor(y)
        y1, dy = min(y0 + 1, h - 1), y - y0
        for j in range(out_w):
            x = j * (w / out_w)
            x0 = math.floor(x)
            x1, dx = min(x0 + 1, w - 1), x - x0
            top = image[y0, x0] + (image[y0, x1] - image[y0, x0]) * dx
            bottom = image[y1, x0] + (image[y1, x1] - image[y1, x0]) * dx
            out[i, j] = top + (bottom - top) * dy
    return out


def test_tf1_resize_golden_values():
    x = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    out = resize_bilinear_tf1(x, (4, 4))[0, 0]
    # source rows/cols 0, 0.5, 1, 1.5 (no half-pixel offset; the last one clamps at the edge)
    expected = torch.tensor(
        [[0.0, 0.5, 1.0, 1.0], [1.0, 1.5, 2.0, 2.0], [2.0, 2.5, 3.0, 3.0], [2.0, 2.5, 3.0, 3.0]]
    )
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize(("size_in", "size_out"), [((28, 28), (299, 299)), ((32, 20), (13, 41))])
def test_tf1_resize_matches_the_per_pixel_reference(size_in, size_out):
    image = np.random.default_rng(0).uniform(0, 255, size_in)
    got = resize_bilinear_tf1(torch.from_numpy(image)[None, None].float(), size_out)[0, 0]
    # TF (and we) compute the source coordinate in float32: off the float64 reference's by up
    # to 2 ulps of the coordinate (2 * 2^-24 * size), times a pixel step of up to 255; plus a
    # few float32 roundings of values up to 255
    atol = 2 * 2**-24 * max(size_in) * 255 + 4 * 2**-24 * 255
    np.testing.assert_allclose(got.numpy(), tf1_reference(image, *size_out), rtol=0, atol=atol)


def test_tf1_resize_identity_and_batch_independence():
    x = torch.rand(5, 3, 17, 23)
    assert resize_bilinear_tf1(x, (17, 23)) is x
    whole = resize_bilinear_tf1(x, (40, 30))
    parts = torch.cat([resize_bilinear_tf1(x[i : i + 1], (40, 30)) for i in range(5)])
    # elementwise operations only (no sums): every element is rounded the same way in any batch
    torch.testing.assert_close(whole, parts, rtol=0, atol=0)


def test_quantize_and_area_downsample():
    assert quantize_uint8(torch.tensor([0.0, 0.5, 1.0, 1.7, -1.0])).tolist() == [
        0,
        128,
        255,
        255,
        0,
    ]
    x = torch.rand(2, 3, 1024, 1024)
    small = area_downsample(x, 256)
    assert small.shape == (2, 3, 256, 256)
    torch.testing.assert_close(small[0, 0, 0, 0], x[0, 0, :4, :4].mean())
    assert area_downsample(x[..., :64, :64], 256).shape[-1] == 64


# --- PPL ------------------------------------------------------------------------------------------
def squared_l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).pow(2).flatten(1).sum(1)


def gaussian_latent(dim: int):
    def sample(n: int, *, generator=None) -> torch.Tensor:
        return torch.randn(n, dim, generator=generator, dtype=torch.float64)

    return sample


def test_ppl_of_a_linear_generator_in_w_space_is_analytic():
    """G(w) = A w, w = M z, lerp: d/eps^2 = |A M (z1 - z0)|^2 exactly, whatever t is."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(3 * 4 * 4, 6, generator=gen, dtype=torch.float64)
    m = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    synthesize = lambda w: (w @ a.T).view(-1, 3, 4, 4)  # noqa: E731
    mapping = lambda z: z @ m.T  # noqa: E731
    n = 300
    out = perceptual_path_length(
        synthesize, gaussian_latent(6), squared_l2, n=n, space="w", mapping=mapping, batch_size=64
    )
    # the same latents, drawn the way the metric draws them: z0 (n, D), z1 (n, D), then t (n,)
    gen = torch.Generator().manual_seed(0)
    z0 = torch.randn(n, 6, generator=gen, dtype=torch.float64)
    z1 = torch.randn(n, 6, generator=gen, dtype=torch.float64)
    expected = [((z1 - z0) @ m.T @ a.T).pow(2).sum(1).numpy()]
    values = np.concatenate(expected)
    # float64: the difference of images eps = 1e-4 apart loses ~eps64 / eps = 2e-12 of itself
    assert out["ppl"] == pytest.approx(percentile_filter(values).mean(), rel=1e-7)
    assert out["ppl_kept"] < n  # the 1st/99th percentile filter dropped the extremes


def test_ppl_slerp_of_a_scaled_identity_is_the_angle():
    """G(z) = c z in z space, t = 0 ('end'): d/eps^2 = c^2 ((|b|-|a|)^2 + |a|^2 theta^2)."""
    c, n = 3.0, 200
    synthesize = lambda z: (c * z).view(-1, 1, 2, 4)  # noqa: E731
    values = path_lengths(
        synthesize, gaussian_latent(8), squared_l2, n=n, sampling="end", batch_size=50
    )
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, 8, generator=gen, dtype=torch.float64)
    b = torch.randn(n, 8, generator=gen, dtype=torch.float64)
    na, nb = a.norm(dim=1), b.norm(dim=1)
    theta = torch.acos(((a / na[:, None]) * (b / nb[:, None])).sum(1))
    expected = [(c**2 * ((nb - na) ** 2 + na**2 * theta**2)).numpy()]
    # a one-sided finite difference with eps = 1e-4: relative truncation error O(eps) times the
    # path's curvature (measured: at most 1.2e-4); rounding adds ~2e-12
    np.testing.assert_allclose(values, np.concatenate(expected), rtol=1e-3)


def test_slerp_is_stylegans_for_unit_vectors():
    gen = torch.Generator().manual_seed(1)
    a = torch.nn.functional.normalize(torch.randn(5, 4, generator=gen, dtype=torch.float64), dim=1)
    b = torch.nn.functional.normalize(torch.randn(5, 4, generator=gen, dtype=torch.float64), dim=1)
    torch.testing.assert_close(slerp(a, b, torch.zeros(5)), a)
    torch.testing.assert_close(slerp(a, b, torch.ones(5)), b)
    mid = slerp(a, b, torch.full((5,), 0.5))
    torch.testing.assert_close(mid, torch.nn.functional.normalize(a + b, dim=1))


def test_ppl_is_batch_size_independent_and_seeded():
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(16, 5, generator=gen, dtype=torch.float64)
    synthesize = lambda z: torch.tanh(z @ a.T).view(-1, 1, 4, 4)  # noqa: E731
    first = path_lengths(synthesize, gaussian_latent(5), squared_l2, n=40, batch_size=40, seed=3)
    for batch_size in (1, 7, 64):
        again = path_lengths(
            synthesize, gaussian_latent(5), squared_l2, n=40, batch_size=batch_size, seed=3
        )
        # float64 products in other batch shapes differ in the last bit; the eps = 1e-4
        # difference turns that into ~eps64 / eps = 2e-12 relative
        np.testing.assert_allclose(again, first, rtol=1e-9)
    other = path_lengths(synthesize, gaussian_latent(5), squared_l2, n=40, batch_size=40, seed=4)
    assert not np.allclose(other, first)


def test_ppl_model_protocols_and_errors():
    class Plain:
        def sample(self, n, *, generator=None):
            return torch.rand(n, 1, 4, 4)

    class Latent(Plain):
        def sample_latent(self, n, *, generator=None):
            return torch.randn(n, 3, generator=generator)

        def generate(self, z):
            return z.view(-1, 1, 1, 3)

    class Style(Latent):
        def mapping(self, z):
            return 2 * z

        def synthesis(self, w):
            return w.view(-1, 1, 1, 3)

    assert isinstance(Latent(), LatentGenerator) and not isinstance(Latent(), StyleGenerator)
    assert isinstance(Style(), StyleGenerator)
    with pytest.raises(GenlabError, match="latent-space generator"):
        model_ppl_callables(Plain(), "z")
    with pytest.raises(GenlabError, match="mapping"):
        model_ppl_callables(Latent(), "w")
    parts = model_ppl_callables(Style(), "w")
    out = perceptual_path_length(n=20, distance=squared_l2, space="w", batch_size=8, **parts)
    assert math.isfinite(out["ppl"]) and out["ppl_protocol"]["interpolation"] == "lerp"
    with pytest.raises(GenlabError, match="space"):
        path_lengths(parts["synthesize"], parts["sample_latent"], squared_l2, n=4, space="x")
