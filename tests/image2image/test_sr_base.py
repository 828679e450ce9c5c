"""The super-resolution base (genlab.image2image.sr_base): degradation, baseline, colour, tiling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genlab.image2image.espcn import ESPCN, ESPCNConfig
from genlab.image2image.sr_base import bicubic_downsample, modcrop
from genlab.image2image.srcnn import SRCNN, SRCNNConfig
from genlab.image2image.srgan import SRGAN, SRGANConfig
from genlab.image2image.srresnet import SRResNet, SRResNetConfig


def tiny(kind: str, scale: int = 2, mode: str = "y"):
    shape = (3, 12 * scale, 12 * scale)
    torch.manual_seed(0)
    if kind == "srcnn":
        return SRCNN(SRCNNConfig(shape, scale, mode, f1=5, f3=3, n1=4, n2=4)).eval()
    if kind == "espcn":
        return ESPCN(ESPCNConfig(shape, scale, mode, n1=4, n2=4)).eval()
    if kind == "srresnet":
        model = SRResNet(SRResNetConfig(shape, scale, mode, channels=4, blocks=2))
    else:
        model = SRGAN(SRGANConfig(shape, scale, mode, channels=4, blocks=1, d_width=2, d_dense=4))
    torch.nn.init.normal_(model.generator.tail.weight, std=0.1)  # not the zero start: trained
    return model.eval()


KINDS = ("srcnn", "espcn", "srresnet", "srgan")


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_degrade_and_baseline_shapes(scale):
    model = tiny("espcn", scale)
    x = torch.rand(2, 3, 25, 31)
    lr = model.degrade(x)
    assert lr.shape == (2, 3, 25 // scale, 31 // scale)
    assert torch.equal(lr, (lr * 255).round() / 255) and lr.min() >= 0 and lr.max() <= 1
    assert model.baseline(lr).shape == (2, 3, 25 // scale * scale, 31 // scale * scale)
    assert modcrop(x, scale).shape[-2:] == (25 // scale * scale, 31 // scale * scale)
    assert model.crop_border == scale


def test_the_degradation_is_matlab_and_pil_bicubic_with_antialiasing():
    """Keys' cubic with a = -0.5 stretched by the scale: PIL's BICUBIC agrees to rounding
    (PIL computes in 8-bit fixed point), torch's default aliased a = -0.75 kernel does not."""
    from PIL import Image
    from skimage.data import astronaut

    image = astronaut()[:240, :240]
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    ours = (bicubic_downsample(x, 3).clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
    pil = np.asarray(Image.fromarray(image).resize((80, 80), Image.BICUBIC)).astype(float)
    aliased = F.interpolate(x, size=(80, 80), mode="bicubic", align_corners=False)
    aliased = (aliased.clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
    assert np.abs(ours - pil).mean() < 0.25  # measured 0.12: a level here and there
    assert np.abs(aliased - pil).mean() > 10 * np.abs(ours - pil).mean()


def test_grey_and_rgb_inputs_keep_their_channels():
    for mode in ("y", "rgb"):
        model = tiny("espcn", 2, mode)
        assert model.translate(torch.rand(1, 1, 8, 9)).shape == (1, 1, 16, 18)
        assert model.translate(torch.rand(1, 3, 8, 9)).shape == (1, 3, 16, 18)
    model = tiny("espcn", 2, "y")
    grey = torch.rand(1, 1, 8, 9, dtype=torch.float64)
    assert torch.allclose(model.from_network(model.to_network(grey), grey[..., :4, :4]), grey)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ["y", "rgb"])
def test_tiled_translation_equals_the_whole_image(kind, mode):
    model = tiny(kind, 3, mode)
    image = torch.rand(2, 3, 37, 29)
    with torch.no_grad():
        whole = model.translate(image, tile=64)
        tiled = model.translate(image, tile=16)
    assert tiled.shape == whole.shape == (2, 3, 111, 87)
    # the same sums per output pixel, but convolutions over other spatial sizes may block and
    # order them differently: float32 sums of ~10^3 O(1) terms differ by at most ~10^3 x 6e-8,
    # times the YCbCr -> RGB matrix (entries < 2.1): 2e-4 bounds it (measured here: at most
    # 4e-6 over every model, mode and scale); a wrong overlap errs by ~1e-2
    assert (tiled - whole).abs().max() < 2e-4


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_the_receptive_radius_bounds_what_an_output_pixel_reads(kind, scale):
    """The tiles' overlap is only right if no output pixel reads an input pixel farther than
    the radius: the gradient of one output pixel is exactly zero beyond it."""
    model = tiny(kind, scale, "y").double()
    size = 2 * model.receptive_radius + 9
    lr = torch.rand(1, 3, size, size, dtype=torch.float64, requires_grad=True)
    centre = size // 2
    for offset in range(scale):  # every sub-pixel position of the centre input pixel
        row = col = centre * scale + offset
        out = model.from_network(model.super_resolve(model.to_network(lr)), lr)  # unclamped
        (grad,) = torch.autograd.grad(out[0, :, row, col].sum(), lr)
        rows, cols = grad.abs().sum((0, 1)).nonzero(as_tuple=True)
        reach = max((rows - centre).abs().max(), (cols - centre).abs().max())
        assert reach <= model.receptive_radius - 1
        assert reach >= 1  # the network does read its neighbours (the test can fail)
