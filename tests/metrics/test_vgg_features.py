"""VGG16/VGG19 feature networks: torchvision key names, named layers, the random fallback, and
the sha256 prefix pins of torchvision's files."""

from __future__ import annotations

import dataclasses
import hashlib
import warnings

import pytest
import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.metrics import vgg
from genlab.metrics.vgg import (
    VGG,
    RandomWeightsWarning,
    imagenet_normalize,
    layer_names,
    load_vgg,
    loss_network,
    weights_used,
)
from genlab.metrics.weights import WEIGHTS, WeightFile, resolve_weights, weights_cache

# torchvision's `features` indices of the 3x3 convolutions and their output channels, written out
# by hand (not derived from genlab's config) so that a layout mistake fails here.
CONVS = {
    "vgg16": dict(
        zip(
            (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28),
            (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512),
            strict=True,
        )
    ),
    "vgg19": dict(
        zip(
            (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34),
            (64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512),
            strict=True,
        )
    ),
}
PARAMETERS = {"vgg16": 138_357_544, "vgg19": 143_667_240}  # torchvision's, with the classifier


@pytest.fixture(autouse=True)
def private_folders(monkeypatch, tmp_path):
    """No real cache or weights folder is read, and every test starts with empty VGG caches."""
    monkeypatch.setenv("GENLAB_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(vgg, "_WARNED", set())
    monkeypatch.setattr(vgg, "_LOADED", {})
    monkeypatch.setattr(vgg, "_ON_DEVICE", {})
    (tmp_path / "weights").mkdir()


def torchvision_state(arch: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under torchvision's key names; the classifier keys (which a trunk-only load
    ignores) are small, so the file stays the size of the convolutions."""
    gen = torch.Generator().manual_seed(seed)
    state, channels = {}, 3
    for index, out in CONVS[arch].items():
        state[f"features.{index}.weight"] = torch.randn(out, channels, 3, 3, generator=gen) * 0.05
        state[f"features.{index}.bias"] = torch.randn(out, generator=gen) * 0.1
        channels = out
    for index in (0, 3, 6):
        state[f"classifier.{index}.weight"] = torch.zeros(2, 2)
        state[f"classifier.{index}.bias"] = torch.zeros(2)
    return state


def save(state: dict[str, torch.Tensor], path, fmt: str) -> None:
    if fmt == "pth":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file

        save_file(state, str(path))


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_module_layout_is_torchvisions(arch):
    with torch.device("meta"):
        full, trunk = VGG(arch, classifier=True), VGG(arch)
    expected = [f"features.{i}.{p}" for i in CONVS[arch] for p in ("weight", "bias")]
    assert list(trunk.state_dict()) == expected
    head = [f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")]
    assert list(full.state_dict()) == expected + head
    assert sum(p.numel() for p in full.parameters()) == PARAMETERS[arch]
    assert isinstance(full.avgpool, nn.AdaptiveAvgPool2d) and full.avgpool.output_size == (7, 7)


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_torchvision_files_round_trip(arch, fmt, tmp_path):
    state = torchvision_state(arch)
    path = tmp_path / f"mine.{fmt}"
    save(state, path, fmt)
    network, resolved = load_vgg(arch, path)
    assert resolved.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not resolved.verified  # not a published name: used, recorded as unverified
    assert not network.training and not any(p.requires_grad for p in network.parameters())
    for key, value in network.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)


def test_strict_loading_refuses_missing_and_extra_keys(tmp_path):
    state = torchvision_state("vgg16")
    missing = {k: v for k, v in state.items() if k != "features.28.bias"}
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(GenlabError, match=r"1 missing .*features.28.bias"):
        load_vgg("vgg16", tmp_path / "missing.pth")
    torch.save({**state, "features.31.weight": torch.zeros(1)}, tmp_path / "extra.pth")
    with pytest.raises(GenlabError, match=r"1 unexpected .*features.31.weight"):
        load_vgg("vgg16", tmp_path / "extra.pth")
    torch.save(torchvision_state("vgg16"), tmp_path / "vgg16.pth")
    with pytest.raises(GenlabError, match="does not match"):  # a VGG16 file for a VGG19
        load_vgg("vgg19", tmp_path / "vgg16.pth")


def test_layer_names():
    v16, v19 = layer_names("vgg16"), layer_names("vgg19")
    assert len(v16) == 31 and len(v19) == 37
    assert v19[:6] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1"]
    assert v19[35] == "relu5_4" and v19[36] == "pool5" and v19[28] == "conv5_1"
    assert v16[29] == "relu5_3" and v16[30] == "pool5" and v16[22] == "relu4_3"
    assert v19.index("relu4_1") == 20 and v16.index("relu3_3") == 15
    kinds = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}
    for arch, names in (("vgg16", v16), ("vgg19", v19)):
        with torch.device("meta"):
            features = VGG(arch).features
        assert len(features) == len(names)
        assert all(isinstance(m, kinds[n[:4]]) for m, n in zip(features, names, strict=True))
    with pytest.raises(ValueError, match="unknown VGG"):
        layer_names("vgg11")


def test_named_features_match_the_stack_and_stop_early():
    network = VGG("vgg19").eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    ran = []
    for index, layer in enumerate(network.features):
        layer.register_forward_hook(lambda *_, i=index: ran.append(i))
    with torch.no_grad():
        got = network.named_features(x, ["relu3_1", "relu1_1", "conv2_2"])
        assert list(got) == ["relu3_1", "relu1_1", "conv2_2"]  # the order asked
        assert max(ran) == layer_names("vgg19").index("relu3_1") == 11  # nothing deeper ran
        ran.clear()
        by_hand = {}
        for name in ("relu1_1", "conv2_2", "relu3_1"):
            by_hand[name] = network.features[: layer_names("vgg19").index(name) + 1](x)
    for name, value in by_hand.items():
        torch.testing.assert_close(got[name], value, rtol=0, atol=0)
    assert got["relu3_1"].shape == (2, 256, 8, 8)
    with pytest.raises(ValueError, match=r"relu6_1; valid: conv1_1, .*relu5_4, pool5"):
        network.named_features(x, ["relu6_1"])


def test_imagenet_normalize():
    grey = torch.rand(2, 1, 4, 4)
    out = imagenet_normalize(grey)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(out, (grey.expand(-1, 3, -1, -1) - mean) / std)
    rgb = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(imagenet_normalize(rgb), (rgb - mean) / std)
    with pytest.raises(ValueError, match="channels"):
        imagenet_normalize(torch.rand(1, 2, 4, 4))


def test_random_fallback_is_deterministic_and_warns_once():
    with pytest.raises(GenlabError, match=r"vgg19-dcbb9e9d\.pth .*--download"):
        load_vgg("vgg19")  # without random_ok a missing file is an error
    torch.manual_seed(0)  # the global generator must not matter
    with pytest.warns(RandomWeightsWarning, match="vgg19-dcbb9e9d.pth not found.*random weights"):
        first, resolved = load_vgg("vgg19", random_ok=True)
    torch.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would fail here
        second, _ = load_vgg("vgg19", random_ok=True)
    assert resolved is None
    assert not first.training and not any(p.requires_grad for p in first.parameters())
    for (key, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=key)
    # torchvision's init: kaiming_normal_(fan_out, relu), bias 0
    weight = first.features[34].weight  # (512, 512, 3, 3): 2.4M draws, std known to 0.1%
    assert float(weight.std()) == pytest.approx((2 / (512 * 9)) ** 0.5, rel=0.01)
    assert float(weight.mean()) == pytest.approx(0.0, abs=1e-4)
    assert all(float(first.features[i].bias.abs().max()) == 0 for i in CONVS["vgg19"])
    with pytest.warns(RandomWeightsWarning, match="vgg16-397923af.pth"):  # once per arch
        full, _ = load_vgg("vgg16", classifier=True, random_ok=True)
    assert float(full.classifier[0].weight.std()) == pytest.approx(0.01, rel=0.01)


def test_a_wrong_file_under_a_pinned_name_is_still_refused(tmp_path):
    body = b"not the published vgg19"
    assert not hashlib.sha256(body).hexdigest().startswith(WEIGHTS["vgg19"].sha256)
    (tmp_path / "weights" / "vgg19-dcbb9e9d.pth").write_bytes(body)
    with pytest.raises(GenlabError, match="sha256"):
        load_vgg("vgg19", random_ok=True)
    with pytest.raises(GenlabError, match="not the published one"):
        load_vgg("vgg19", tmp_path / "weights" / "vgg19-dcbb9e9d.pth", random_ok=True)
    with pytest.raises(GenlabError, match="does not exist"):  # an explicit path never falls back
        load_vgg("vgg19", tmp_path / "nope.pth", random_ok=True)


def test_prefix_pins(monkeypatch, tmp_path):
    assert WEIGHTS["vgg19"].sha256 == "dcbb9e9d" and WEIGHTS["vgg19"].pin() == "dcbb9e9d..."
    path = tmp_path / "weights" / "vgg19-dcbb9e9d.pth"
    torch.save(torchvision_state("vgg19", seed=3), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(WEIGHTS, "vgg19", dataclasses.replace(WEIGHTS["vgg19"], sha256=digest[:8]))
    found = resolve_weights("vgg19")
    assert found.path == path and found.verified and found.sha256 == digest  # the full digest
    assert resolve_weights("vgg19", path).verified
    network, resolved = load_vgg("vgg19")
    assert resolved.sha256 == digest
    expected = torchvision_state("vgg19", seed=3)["features.34.weight"]
    torch.testing.assert_close(network.features[34].weight, expected, rtol=0, atol=0)
    # a pin that is not a prefix of the digest (the same length, one digit changed) fails
    other = f"{(int(digest[0], 16) + 1) % 16:x}{digest[1:8]}"
    monkeypatch.setitem(WEIGHTS, "vgg19", dataclasses.replace(WEIGHTS["vgg19"], sha256=other))
    with pytest.raises(GenlabError, match="sha256"):
        resolve_weights("vgg19")
    with pytest.raises(ValueError, match="8 to 64"):
        dataclasses.replace(WEIGHTS["vgg19"], sha256="dcbb9e")
    assert WeightFile.matches(WEIGHTS["vgg16"], WEIGHTS["vgg16"].sha256)


def test_downloads_compare_the_prefix(monkeypatch, file_server):
    base, files = file_server
    body = b"pretend vgg19 bytes"
    digest = hashlib.sha256(body).hexdigest()
    entry = dataclasses.replace(WEIGHTS["vgg19"], urls=(f"{base}/v.pth",), sha256=digest[:8])
    monkeypatch.setitem(WEIGHTS, "vgg19", entry)
    files["/v.pth"] = body + b"tampered"
    with pytest.raises(GenlabError, match="sha256"):
        resolve_weights("vgg19", download=True)
    assert not (weights_cache() / "vgg19-dcbb9e9d.pth").exists()
    files["/v.pth"] = body
    got = resolve_weights("vgg19", download=True)
    assert got.path == weights_cache() / "vgg19-dcbb9e9d.pth" and got.verified
    assert got.sha256 == digest and got.path.read_bytes() == body


def test_loss_network_cache_and_weights_used(tmp_path):
    with pytest.warns(RandomWeightsWarning, match="random weights"):
        full = loss_network("vgg19", "cpu")
    assert loss_network("vgg19", torch.device("cpu")) is full
    assert weights_used("vgg19") == "random"
    short = loss_network("vgg19", "cpu", layers=["relu2_1", "relu1_1"])
    assert len(short.features) == layer_names("vgg19").index("relu2_1") + 1
    assert short is loss_network("vgg19", "cpu", layers=["relu2_1"])
    assert not any(p.requires_grad for p in short.parameters()) and not short.training
    x = imagenet_normalize(torch.rand(1, 3, 16, 16))
    with torch.no_grad():
        torch.testing.assert_close(
            short.named_features(x, ["relu2_1"])["relu2_1"],
            full.named_features(x, ["relu2_1"])["relu2_1"],
            rtol=0,
            atol=0,
        )
    with pytest.raises(ValueError, match=r"relu3_1; valid: conv1_1, .*relu2_1$"):
        short.named_features(x, ["relu3_1"])
    # a pretrained file found: its sha256 is what the numbers were made with
    path = tmp_path / "weights" / "vgg16-397923af.pth"
    torch.save(torchvision_state("vgg16", seed=4), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    pinned = dataclasses.replace(WEIGHTS["vgg16"], sha256=digest)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(WEIGHTS, "vgg16", pinned)
        assert weights_used("vgg16") == digest
        torch.testing.assert_close(
            loss_network("vgg16", "cpu").features[0].weight,
            torchvision_state("vgg16", seed=4)["features.0.weight"],
            rtol=0,
            atol=0,
        )
