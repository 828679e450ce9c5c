"""Fast style transfer and AdaIN: translation, the style image as a run asset, AdaIN's alpha
and style interpolation, the mirrored decoder (the contract suite trains each a step)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genlab.contract import RunAssets, Translator, translate_keywords
from genlab.data.styles import style_image
from genlab.errors import GenlabError
from genlab.image2image.adain import AdaIN, adain, mirrored_decoder
from genlab.image2image.fast_style import FastStyle
from genlab.image2image.style_losses import mean_std
from genlab.imaging import save_image
from genlab.metrics.vgg import VGG, layer_names
from genlab.training.loop import TrainConfig, make_optimizer


def fast_style(**values) -> FastStyle:
    torch.manual_seed(0)
    config = FastStyle.Config(data_shape=(3, 32, 32), width=4, blocks=1, style_size=32)
    return FastStyle(dataclasses.replace(config, **values))


def small_adain(**values) -> AdaIN:
    torch.manual_seed(0)
    config = AdaIN.Config(data_shape=(3, 32, 32), encoder_layer="relu2_1", style_size=16)
    return AdaIN(dataclasses.replace(config, **values))


def test_fast_style_translates_any_size_into_the_unit_range():
    model = fast_style().eval()
    assert isinstance(model, Translator) and isinstance(model, RunAssets)
    with torch.no_grad():
        y = model.translate(torch.rand(2, 3, 21, 30))
    assert y.shape == (2, 3, 21, 30) and y.min() >= 0 and y.max() <= 1
    with pytest.raises(ValueError, match="no options"):
        model.translate(torch.rand(1, 3, 8, 8), alpha=0.5)


def test_the_style_image_travels_with_the_run(tmp_path):
    """A style file used for training is copied into the run folder; a model loaded from the
    folder reads that copy, even after the original file is gone."""
    original = tmp_path / "mine.png"
    save_image(torch.rand(3, 20, 24), original)
    model = fast_style(style=str(original), style_size=24)
    model.bind_data(None)
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(GenlabError, match=r"style\.png"):
        FastStyle.data_options(run)
    model.save_assets(run)
    assert FastStyle.data_options(run) == {}
    original.unlink()
    loaded = fast_style(style=str(original), style_size=24)
    loaded.load_assets(run)
    assert torch.allclose(loaded.style(), model.style(), atol=0.5 / 255)
    batch = torch.rand(2, 3, 32, 32)
    torch.manual_seed(1)
    assert torch.isclose(loaded.loss(batch)["loss"], model.loss(batch)["loss"], rtol=1e-3)


def test_a_missing_style_is_a_one_line_error(tmp_path):
    model = fast_style(style=str(tmp_path / "gone.png"))
    with pytest.raises(GenlabError, match="neither a built-in style"):
        model.bind_data(None)


def test_fast_style_with_vgg16_and_a_texture_style_has_a_finite_loss():
    model = fast_style(loss_network="vgg16", style="brick", content_layer="relu1_2",
                       style_layers=("relu1_2", "relu2_2"))  # fmt: skip
    out = model.loss(torch.rand(2, 3, 32, 32))
    assert all(torch.isfinite(v) for v in out.values()) and out["style"] > 0


def test_adain_gives_the_content_the_styles_channel_statistics():
    x, y = torch.randn(2, 5, 6, 7), 3 + 2 * torch.randn(2, 5, 9, 4)
    mu, sigma = mean_std(adain(x, y))
    mu_y, sigma_y = mean_std(y)
    assert torch.allclose(mu, mu_y, atol=1e-5) and torch.allclose(sigma, sigma_y, atol=1e-4)
    # and the content's normalised pattern is kept
    mu_x, sigma_x = mean_std(x)
    assert torch.allclose((adain(x, y) - mu) / sigma, (x - mu_x) / sigma_x, atol=1e-4)


def test_the_decoder_mirrors_the_encoder_with_upsampling():
    encoder = VGG("vgg19").features[: layer_names("vgg19").index("relu4_1") + 1]
    decoder = mirrored_decoder(encoder)
    convs = [(m.in_channels, m.out_channels) for m in decoder if isinstance(m, torch.nn.Conv2d)]
    # the paper's decoder for relu4_1
    assert convs == [(512, 256), (256, 256), (256, 256), (256, 256), (256, 128), (128, 128),
                     (128, 64), (64, 64), (64, 3)]  # fmt: skip
    assert sum(isinstance(m, torch.nn.Upsample) for m in decoder) == 3
    assert not isinstance(decoder[-1], torch.nn.ReLU)
    with torch.no_grad():
        assert decoder(torch.rand(1, 512, 4, 5)).shape == (1, 3, 32, 40)


def test_adain_keeps_a_frozen_encoder_in_its_state_dict():
    model = small_adain()
    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(name.startswith("encoder.") for name in frozen)
    assert all(name in model.state_dict() for name in frozen)
    trained = {id(p) for group in make_optimizer(model, TrainConfig()).param_groups
               for p in group["params"]}  # fmt: skip
    assert trained == {id(p) for p in model.decoder.parameters()}


def test_adain_alpha_zero_decodes_the_contents_own_features():
    model = small_adain().eval()
    content, style = torch.rand(2, 3, 32, 32), torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        zero = model.translate(content, style=style, alpha=0.0)
        own = model.decoder(model.encode(content)[-1]).clamp(0, 1)
        full = model.translate(content, style=style)
    assert torch.allclose(zero, own, atol=1e-6)
    assert not torch.allclose(full, own, atol=1e-3)


def test_adain_style_interpolation_and_options():
    model = small_adain().eval()
    content = torch.rand(1, 3, 19, 26)  # padded inside, cropped back
    s1, s2 = style_image("mosaic", 32)[None], style_image("waves", 32)[None]
    with torch.no_grad():
        one = model.translate(content, style=s1, alpha=0.7)
        pure = model.translate(content, style=[s1, s2], weights=[1.0, 0.0], alpha=0.7)
        mixed = model.translate(content, style=[s1, s2], weights=[1.0, 1.0], alpha=0.7)
    assert one.shape == (1, 3, 19, 26)
    assert torch.allclose(one, pure, atol=1e-6) and not torch.allclose(one, mixed, atol=1e-3)
    assert translate_keywords(model, {"alpha": "0.5"}) == {"alpha": 0.5}
    with pytest.raises(ValueError, match="alpha"):
        translate_keywords(model, {"alpha": 1.5})
    with pytest.raises(GenlabError, match="style"):
        model.translate(content)
    with pytest.raises(GenlabError, match="weights"):
        model.translate(content, style=[s1, s2], weights=[1.0])
