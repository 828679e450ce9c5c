"""Gatys et al.'s optimisation (image2image/gatys.py) on tiny images with the random VGG19."""

from __future__ import annotations

import pytest
import torch

from genlab.errors import GenlabError
from genlab.image2image.gatys import (
    Settings,
    rgb_to_yiq,
    style_targets,
    stylize,
    with_chroma,
    yiq_to_rgb,
)
from genlab.image2image.style_losses import STYLE_LAYERS, features, gram_matrix
from genlab.metrics.vgg import loss_network


def picture(seed: int, size: int = 32) -> torch.Tensor:
    """A smooth random colour image (3, size, size) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 4, 4, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")
    return (smooth + 0.1 * torch.rand(1, 3, size, size, generator=g)).clamp(0, 1)[0]


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_the_optimisation_lowers_the_loss(optimizer):
    content, style = picture(0), picture(1, 40)
    settings = Settings(steps=12, optimizer=optimizer)
    image, history = stylize(content, [(style, 1.0)], settings)
    first, last = history.losses[0], history.losses[-1]
    assert len(history.losses) == 12
    assert first["content"] == 0.0  # it starts from the content image
    assert last["loss"] < 0.5 * first["loss"]
    assert last["style"] < first["style"]
    assert image.shape == content.shape and image.min() >= 0 and image.max() <= 1


def test_noise_start_is_seeded_and_frames_are_kept():
    content, style = picture(2), picture(3)
    settings = Settings(steps=4, init="noise", seed=5, frame_every=2)
    a, history = stylize(content, [(style, 1.0)], settings)
    b, _ = stylize(content, [(style, 1.0)], settings)
    c, _ = stylize(content, [(style, 1.0)], Settings(steps=4, init="noise", seed=6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert history.losses[0]["content"] > 0  # noise is not the content
    assert len(history.frames) == 3  # steps 1, 2 and 4
    assert all(frame.shape == content.shape for frame in history.frames)


def test_colour_preservation_keeps_the_contents_chroma_exactly():
    content, style = picture(4), picture(5)
    image, _ = stylize(content, [(style, 1.0)], Settings(steps=5, preserve_color=True))
    ours, theirs = rgb_to_yiq(image.double()), rgb_to_yiq(content.double())
    assert (ours[1:] - theirs[1:]).abs().max() < 1e-5  # I and Q: float32 rounding only
    assert (ours[0] - theirs[0]).abs().max() > 1e-3  # the luminance did change


def test_luminance_outside_the_gamut_is_clipped_without_touching_the_chroma():
    content = picture(6)
    for y in (torch.full((1, 32, 32), 3.0), torch.full((1, 32, 32), -2.0)):
        rgb = with_chroma(y, content)
        assert rgb.min() >= -1e-6 and rgb.max() <= 1 + 1e-6
        assert torch.allclose(rgb_to_yiq(rgb)[1:], rgb_to_yiq(content)[1:], atol=1e-5)
    x = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    assert torch.allclose(yiq_to_rgb(rgb_to_yiq(x)), x, atol=1e-12)


def test_a_blend_of_styles_targets_the_weighted_gram_matrices():
    vgg = loss_network("vgg19", "cpu")
    s1, s2 = picture(7), picture(8, 48)
    blended = style_targets(vgg, [(s1, 1.0), (s2, 3.0)], STYLE_LAYERS)
    g1 = {k: gram_matrix(v) for k, v in features(vgg, s1[None], STYLE_LAYERS).items()}
    g2 = {k: gram_matrix(v) for k, v in features(vgg, s2[None], STYLE_LAYERS).items()}
    for layer in STYLE_LAYERS:
        expected = 0.25 * g1[layer] + 0.75 * g2[layer]
        assert torch.allclose(blended[layer], expected, rtol=1e-5, atol=1e-12), layer
    alone = style_targets(vgg, [(s1, 2.0)], STYLE_LAYERS)
    assert all(torch.allclose(alone[k], g1[k]) for k in STYLE_LAYERS)


@pytest.mark.parametrize(
    "settings, styles, message",
    [
        (Settings(layer_weights=(1.0,)), "one", "layer weights"),
        (Settings(optimizer="sgd"), "one", "optimizer"),
        (Settings(style_weight=-1.0), "one", "style_weight"),
        (Settings(), "none", "at least one style"),
        (Settings(), "zero", "positive sum"),
    ],
)
def test_bad_settings_are_one_line_errors(settings, styles, message):
    style = picture(9)
    given = {"one": [(style, 1.0)], "none": [], "zero": [(style, 0.0)]}[styles]
    with pytest.raises(GenlabError, match=message):
        stylize(picture(10), given, settings)
