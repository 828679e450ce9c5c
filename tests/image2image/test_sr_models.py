"""SRCNN, ESPCN, SRResNet and SRGAN: shapes per scale, sub-pixel layers, SRGAN's pieces."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab.image2image.espcn import ESPCN, ESPCNConfig
from genlab.image2image.srcnn import SRCNN, SRCNNConfig
from genlab.image2image.srgan import SRGAN, Discriminator, SRGANConfig
from genlab.image2image.srresnet import SRResNet, SRResNetConfig


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("mode", ["y", "rgb"])
def test_each_model_upscales_by_its_scale(scale, mode):
    shape = (3, 12 * scale, 12 * scale)
    models = [
        SRCNN(SRCNNConfig(shape, scale, mode, n1=4, n2=4)),
        ESPCN(ESPCNConfig(shape, scale, mode, n1=4, n2=4)),
        SRResNet(SRResNetConfig(shape, scale, mode, channels=4, blocks=1)),
        SRGAN(SRGANConfig(shape, scale, mode, channels=4, blocks=1, d_width=2, d_dense=4)),
    ]
    n = 1 if mode == "y" else 3
    lr = torch.rand(2, n, 7, 5)
    for model in models:
        assert model.super_resolve(lr).shape == (2, n, 7 * scale, 5 * scale), type(model)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_espcn_sub_pixel_convolution_shapes(scale):
    model = ESPCN(ESPCNConfig((3, 12 * scale, 12 * scale), scale, "rgb", n1=4, n2=4))
    lr = torch.rand(2, 3, 6, 5)
    features = model.conv3(torch.tanh(model.conv2(torch.tanh(model.conv1(lr)))))
    assert features.shape == (2, 3 * scale**2, 6, 5)  # r^2 C channels at low resolution
    assert model.shuffle(features).shape == (2, 3, 6 * scale, 5 * scale)
    # PS(T)[c, r y + i, r x + j] = T[c r^2 + r i + j, y, x]: the periodic shuffle of eq. 4
    shuffled = model.shuffle(features)
    c, i, j, y, x = 1, scale - 1, 0, 3, 2
    assert (
        shuffled[0, c, scale * y + i, scale * x + j]
        == features[0, c * scale**2 + scale * i + j, y, x]
    )


@pytest.mark.parametrize("scale, factors", [(2, [2]), (3, [3]), (4, [2, 2])])
def test_srresnet_upsamples_in_sub_pixel_stages(scale, factors):
    model = SRResNet(SRResNetConfig((3, 12 * scale, 12 * scale), scale, channels=4, blocks=1))
    shuffles = [
        m.upscale_factor for m in model.generator.upsample if isinstance(m, nn.PixelShuffle)
    ]
    assert shuffles == factors  # x3 is one x3 stage, x4 two x2 stages (the paper's)


def test_srresnet_blocks_have_batch_norm_and_prelu():
    model = SRResNet(SRResNetConfig(channels=4, blocks=3))
    assert len(model.generator.blocks) == 3
    kinds = [type(m) for m in model.generator.blocks[0].body]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.PReLU, nn.Conv2d, nn.BatchNorm2d]


def test_configs_refuse_what_they_cannot_build():
    with pytest.raises(ValueError, match="scale must be one of 2, 3, 4"):
        ESPCN(ESPCNConfig(scale=5))
    with pytest.raises(ValueError, match="not a multiple of scale 3"):
        ESPCN(ESPCNConfig(data_shape=(3, 32, 32), scale=3))
    with pytest.raises(ValueError, match="mode"):
        SRCNN(SRCNNConfig(mode="lab"))
    with pytest.raises(ValueError, match="content_layer"):
        SRGAN(SRGANConfig(content_layer="relu9_9"))


def test_the_discriminator_gives_one_logit_per_image_for_any_patch_size():
    for size in (96, 90, 24):  # four stride-2 halvings: 90 -> 45 -> 23 -> 12 -> 6
        d = Discriminator(3, width=2, dense=4, size=(size, size))
        assert d(torch.rand(3, 3, size, size) * 2 - 1).shape == (3,)


def test_srgan_starts_from_an_srresnet_with_the_same_parameter_names():
    torch.manual_seed(0)
    srresnet = SRResNet(SRResNetConfig(channels=4, blocks=2))
    srgan = SRGAN(SRGANConfig(channels=4, blocks=2, d_width=2, d_dense=4))
    g_keys = {k for k in srgan.state_dict() if k.startswith("generator.")}
    assert g_keys == set(srresnet.state_dict())  # the same names: an SRResNet run fits G
    srgan.warm_start(srresnet)
    for key, value in srresnet.state_dict().items():
        assert torch.equal(srgan.state_dict()[key], value), key
    with pytest.raises(ValueError, match=r"blocks 3 \(SRGAN: 2\)"):
        srgan.warm_start(SRResNet(SRResNetConfig(channels=4, blocks=3)))
    with pytest.raises(ValueError, match="not a ESPCN"):
        srgan.warm_start(ESPCN(ESPCNConfig(n1=4, n2=4)))


def test_srgan_content_loss_is_zero_for_the_reference_and_scales_with_its_weight():
    hr = torch.rand(2, 3, 24, 24)
    sr = (hr + 0.1 * torch.randn_like(hr)).clamp(0, 1)
    losses = {}
    for weight in (1.0, 10.0):
        model = SRGAN(SRGANConfig((3, 24, 24), 2, channels=4, blocks=1, d_width=2, d_dense=4,
                                  content_layer="relu2_2", content_weight=weight))  # fmt: skip
        assert float(model.content_loss(hr, hr)) == 0.0
        losses[weight] = float(model.content_loss(sr, hr))
    assert losses[1.0] > 0
    assert losses[10.0] == pytest.approx(10 * losses[1.0], rel=1e-5)


def test_srgan_trains_in_the_adversarial_loop(tmp_path):
    """A few steps of genlab.gan.train (the loop SRGAN names as its trainer): both players
    move, the samples are written, the losses are finite."""
    import importlib

    from genlab.contract import config_for_data
    from genlab.data import load_dataset
    from genlab.training.checkpoint import RunDir

    loop = importlib.import_module(SRGAN.trainer)
    cfg = loop.TrainConfig(**{**SRGAN.train_defaults, "steps": 3, "batch_size": 4})
    cfg = loop.TrainConfig(**{**vars(cfg), "sample_n": 2, "eval_batches": 1, "device": "cpu"})
    train = load_dataset("photos", "train", image_size=24)
    val = load_dataset("photos", "val", image_size=24)
    config = SRGANConfig(channels=4, blocks=1, d_width=2, d_dense=4, content_layer="relu1_2")
    torch.manual_seed(0)
    model = SRGAN(config_for_data(config, train.spec))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run = RunDir(tmp_path / "run")
    run.create({"model": "srgan"})
    summary = loop.train(model, train, val, cfg, run, progress=False)
    assert summary["step"] == 3 and torch.isfinite(torch.tensor(summary["val_psnr"]))
    for player in ("generator.head.0.weight", "discriminator.features.0.weight"):
        assert not torch.equal(model.state_dict()[player], before[player]), player
    assert list((run.path / "samples").glob("*.png"))


def test_a_residual_srresnet_starts_as_bicubic_and_the_papers_does_not():
    lr = torch.rand(2, 3, 10, 11)
    residual = SRResNet(SRResNetConfig(channels=4, blocks=1)).eval()
    plain = SRResNet(SRResNetConfig(channels=4, blocks=1, residual=False)).eval()
    with torch.no_grad():
        assert torch.allclose(residual.upscale(lr), residual.baseline(lr), atol=1e-6)
        assert (plain.upscale(lr) - plain.baseline(lr)).abs().max() > 0.01
