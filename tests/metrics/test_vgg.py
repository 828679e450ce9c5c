"""VGG16 and LPIPS: torchvision/LPIPS key names, loaders round-trip, distance properties."""

from __future__ import annotations

import warnings

import pytest
import torch
from metric_helpers import randomize

from genlab.errors import GenlabError
from genlab.metrics.vgg import LPIPS, VGG, VGGFeatures, load_lpips, load_vgg

CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def test_vgg16_matches_torchvision_state_dict():
    with torch.device("meta"):
        net = VGG("vgg16", classifier=True)
    state = net.state_dict()
    expected = [f"features.{i}.{p}" for i in CONV_INDICES for p in ("weight", "bias")]
    expected += [f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")]
    assert list(state) == expected
    assert tuple(state["features.28.weight"].shape) == (512, 512, 3, 3)
    assert tuple(state["classifier.0.weight"].shape) == (4096, 25088)
    assert tuple(state["classifier.6.weight"].shape) == (1000, 4096)
    assert sum(v.numel() for v in state.values()) == 138_357_544  # torchvision's VGG16


def test_lpips_heads_have_the_published_key_names():
    heads = {k: v.shape for k, v in LPIPS().state_dict().items() if k.startswith("lin")}
    assert heads == {
        f"lin{i}.model.1.weight": torch.Size([1, c, 1, 1])
        for i, c in enumerate((64, 128, 256, 512, 512))
    }


@pytest.fixture(scope="module")
def trunk() -> VGG:
    return randomize(VGG("vgg16"), seed=1)


@pytest.fixture(scope="module")
def heads() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(2)
    return {
        f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen)
        for i, c in enumerate((64, 128, 256, 512, 512))
    }


@pytest.mark.parametrize("fmt", ["pth", "safetensors", "torchscript"])
def test_trunk_and_heads_round_trip(trunk, heads, tmp_path, fmt):
    # torchvision's file also holds the classifier: the LPIPS loader skips exactly those keys
    state = {**trunk.state_dict(), "classifier.0.weight": torch.zeros(2, 2)}
    if fmt == "pth":
        torch.save(state, tmp_path / "vgg.bin")
        torch.save(heads, tmp_path / "lin.bin")
    elif fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(state, str(tmp_path / "vgg.bin"))
        save_file(heads, str(tmp_path / "lin.bin"))
    else:  # a TorchScript archive whose tensors are named as in torchvision's file

        class Trunk(torch.nn.Module):
            def __init__(self, features: torch.nn.Module):
                super().__init__()
                self.features = features

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.features(x)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch >= 2.10 deprecates TorchScript
            traced = torch.jit.trace(Trunk(trunk.features), torch.rand(1, 3, 32, 32))
        traced.save(str(tmp_path / "vgg.bin"))
        torch.save(heads, tmp_path / "lin.bin")
    lpips = load_lpips(tmp_path / "vgg.bin", tmp_path / "lin.bin")
    for key, value in trunk.state_dict().items():
        torch.testing.assert_close(lpips.net.state_dict()[key], value, rtol=0, atol=0)
    for key, value in heads.items():
        torch.testing.assert_close(lpips.state_dict()[key], value, rtol=0, atol=0)
    described = lpips.describe()
    assert described["trunk"]["weights"] == "vgg.bin" and described["heads"]["weights"] == "lin.bin"


def test_lpips_distance_properties(trunk, heads, tmp_path):
    lpips = LPIPS(trunk)
    lpips.load_state_dict({**lpips.state_dict(), **heads})
    lpips.eval()
    gen = torch.Generator().manual_seed(3)
    a, b = torch.rand(4, 3, 32, 32, generator=gen), torch.rand(4, 3, 32, 32, generator=gen)
    with torch.inference_mode():
        same = lpips(a, a)
        d = lpips(a, b)
        swapped = lpips(b, a)
        single = torch.cat([lpips(a[i : i + 1], b[i : i + 1]) for i in range(4)])
        grey = lpips(a[:, :1], b[:, :1])
        grey_rgb = lpips(a[:, :1].expand(-1, 3, -1, -1), b[:, :1].expand(-1, 3, -1, -1))
    assert d.shape == (4,) and torch.all(d > 0)
    torch.testing.assert_close(same, torch.zeros(4))
    torch.testing.assert_close(swapped, d)
    # one image at a time vs a batch of 4: float32 sums in another order through 13 convolutions
    # (K <= 4608 terms: ~sqrt(K) eps = 8e-6 each, relative); distances ~1e-1, so 1e-4 relative
    torch.testing.assert_close(single, d, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grey, grey_rgb)


def test_lpips_heads_with_wrong_keys_are_refused(trunk, tmp_path):
    torch.save(trunk.state_dict(), tmp_path / "vgg.pth")
    torch.save({"lin0.weight": torch.zeros(1, 64, 1, 1)}, tmp_path / "lin.pth")
    with pytest.raises(GenlabError, match="does not match"):
        load_lpips(tmp_path / "vgg.pth", tmp_path / "lin.pth")
    with pytest.raises(GenlabError, match="missing"):
        # a trunk-only file for the full net
        load_vgg("vgg16", tmp_path / "vgg.pth", classifier=True)


def test_fc2_features_for_precision_recall():
    net = VGG("vgg16", classifier=True).eval()
    extractor = VGGFeatures(net, channels_last=True)
    images = torch.rand(2, 1, 28, 28)
    with torch.inference_mode():
        x = extractor.preprocess(images)
        out = extractor(x)["features"]
        single = extractor(extractor.preprocess(images[:1]))["features"]
        reference = net.classifier[:4](torch.flatten(net.avgpool(net.features(x.contiguous())), 1))
    assert x.shape == (2, 3, 224, 224) and out.shape == (2, 4096)
    # channels_last vs NCHW kernels and batch 1 vs 2: float32 sums in another order through 15
    # layers of up to K = 25088 terms, ~sqrt(sum K) eps = 5e-5 of the activations' scale; an
    # output far below that scale keeps an absolute error of that size, hence atol by the scale
    atol = 5e-4 * float(reference.abs().max())
    torch.testing.assert_close(out, reference, rtol=1e-4, atol=atol)
    torch.testing.assert_close(single, out[:1], rtol=1e-4, atol=atol)
