"""The FID Inception: architecture and key names of the published file, loaders, protocol."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from metric_helpers import randomize
from torch import nn

from genlab.errors import GenlabError
from genlab.metrics.imageops import quantize_uint8, resize_bilinear_tf1
from genlab.metrics.inception import (
    FIDInceptionV3,
    InceptionA,
    InceptionExtractor,
    NvidiaInception,
    build_from_file,
    load_inception,
)
from genlab.metrics.weights import load_strict


@pytest.fixture(scope="module")
def pristine() -> FIDInceptionV3:
    return randomize(FIDInceptionV3(), seed=0)


@pytest.fixture
def network(pristine) -> FIDInceptionV3:
    """A copy per test: an InceptionExtractor takes over the network it wraps (eval mode,
    channels_last weights), and a test must not see what an earlier one did to it."""
    return copy.deepcopy(pristine)


def trace(module: nn.Module, example: torch.Tensor):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch >= 2.10 deprecates TorchScript; tracer notes
        return torch.jit.trace(module, example, strict=False)


def test_architecture_matches_pytorch_fid_state_dict():
    net = FIDInceptionV3()
    state = net.state_dict()
    # 94 conv+BN units x 6 tensors (weight, BN weight/bias/running mean/var/count) + fc: 566,
    # the number of tensors in pt_inception-2015-12-05-6726825d.pth
    assert len(state) == 566
    # torchvision's Inception3 has 27,161,264 parameters; minus the aux head (3,326,696) plus
    # 8 more classes (1008 x 2048 + 1008 instead of 1000 x 2048 + 1000):
    assert sum(p.numel() for p in net.parameters()) == 27_161_264 - 3_326_696 + 8 * 2049
    for key, shape in {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Conv2d_4a_3x3.bn.running_var": (192,),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
        "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
        "Mixed_7c.branch3x3dbl_3b.bn.weight": (384,),
        "Mixed_7c.branch_pool.bn.num_batches_tracked": (),
        "fc.weight": (1008, 2048),
        "fc.bias": (1008,),
    }.items():
        assert tuple(state[key].shape) == shape, key
    assert not any("AuxLogits" in key for key in state)
    assert (net.Mixed_7b.pool, net.Mixed_7c.pool) == ("avg", "max")


def test_tf_average_pool_ignores_padding():
    block = InceptionA(192, pool_features=32)
    x = torch.ones(1, 192, 5, 5)
    pooled = torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    torch.testing.assert_close(pooled, x)  # a corner averages 4 real ones, not 4/9
    assert block(x).shape == (1, 256, 5, 5)


@pytest.mark.parametrize("fmt", ["pth", "legacy-pth", "safetensors", "torchscript"])
def test_loader_round_trips_random_weights(network, tmp_path, fmt):
    path = tmp_path / ("w.safetensors" if fmt == "safetensors" else "w.pth")
    state = network.state_dict()
    if fmt == "pth":
        torch.save(state, path)
    elif fmt == "legacy-pth":
        torch.save(state, path, _use_new_zipfile_serialization=False)
    elif fmt == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        path = tmp_path / "w.pt"
        trace(network, torch.rand(1, 3, 80, 80) * 255).save(str(path))
    extractor = load_inception(path, channels_last=False)
    loaded = extractor.network.state_dict()
    assert loaded.keys() == state.keys()
    for key in state:
        torch.testing.assert_close(loaded[key], state[key], rtol=0, atol=0)
    x = torch.rand(2, 3, 80, 80) * 255
    with torch.inference_mode():
        torch.testing.assert_close(extractor.network(x), network(x))
    described = extractor.describe()
    assert described["weights"] == path.name and len(described["weights_sha256"]) == 64
    assert described["weights_verified"] is False  # not the published file


def test_loader_rejects_mismatched_files(network, tmp_path):
    state = dict(network.state_dict())
    no_counters = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(no_counters, tmp_path / "old.pth")  # older files lack BN counters: fine
    load_inception(tmp_path / "old.pth")
    target = FIDInceptionV3()
    for bad, match in (
        ({**state, "AuxLogits.fc.weight": torch.zeros(1008, 768)}, "unexpected"),
        ({k: v for k, v in state.items() if k != "fc.bias"}, "missing"),
        ({**state, "fc.bias": torch.zeros(1000)}, "shape"),  # torchvision's 1000 classes
    ):
        with pytest.raises(GenlabError, match=match):
            load_strict(target, bad, "a file")


def test_extractor_protocol_and_batch_independence(network):
    plain = InceptionExtractor(copy.deepcopy(network), channels_last=False)  # NCHW weights
    extractor = InceptionExtractor(network, channels_last=True)
    grey = torch.randint(0, 256, (3, 1, 28, 28), generator=torch.Generator().manual_seed(0)) / 255
    with torch.inference_mode():
        x = extractor.preprocess(grey)
        assert x.shape == (3, 3, 299, 299) and x.is_contiguous(memory_format=torch.channels_last)
        assert float(x.min()) >= -1 and float(x.max()) <= 1  # (x - 128) / 128
        # generator output is rounded to 8-bit levels first: a sub-level change does nothing
        assert torch.equal(extractor.preprocess((grey + 0.3 / 255).clamp(0, 1)), x)
        whole = extractor(x)
        parts = [extractor(extractor.preprocess(grey[i : i + 1])) for i in range(3)]
        nchw = plain(plain.preprocess(grey))
        rgb = extractor(extractor.preprocess(grey.expand(-1, 3, -1, -1)))
    assert whole["features"].shape == (3, 2048) and whole["logits"].shape == (3, 1008)
    # batch 1 vs 3 and NCHW vs channels_last: float32 sums in another order through 94
    # convolutions, ~sqrt(sum K) eps = 5e-5 of the O(1) activations (random He-init weights);
    # measured: a thirtieth of the 1e-4 below
    for name in ("features", "logits"):
        torch.testing.assert_close(
            torch.cat([p[name] for p in parts]), whole[name], rtol=1e-4, atol=1e-4
        )
        torch.testing.assert_close(nchw[name], whole[name], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(rgb[name], whole[name], rtol=0, atol=0)
    # logits are the fc output without its bias
    torch.testing.assert_close(whole["logits"], whole["features"] @ network.fc.weight.T)


def test_nvidia_torchscript_interface(tmp_path):
    """A stand-in with the published interface of NVIDIA's inception-2015-12-05.pt."""

    class Layers(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(3, 2048)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.proj(x.mean((2, 3)))[:, :, None, None]  # (B, 2048, 1, 1)

    class Nvidia(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = Layers()
            self.output = nn.Linear(2048, 1008)

        def forward(
            self,
            img: torch.Tensor,
            return_features: bool = False,
            use_fp16: bool = False,
            no_output_bias: bool = False,
        ) -> torch.Tensor:
            features = self.layers((img - 128) / 128).flatten(1)
            if return_features:
                return features
            logits = features @ self.output.weight.T
            if not no_output_bias:
                logits = logits + self.output.bias
            return logits.softmax(1)

    module = Nvidia().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(module).save(str(tmp_path / "inception-2015-12-05.pt"))
    extractor = build_from_file(tmp_path / "inception-2015-12-05.pt")
    assert isinstance(extractor.network, NvidiaInception)
    images = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        out = extractor(extractor.preprocess(images))
        # what the archive's own forward would be given: 8-bit levels at 299x299, in [0, 255]
        y = resize_bilinear_tf1(quantize_uint8(images), (299, 299))
        expected = module(y, return_features=True)
        probs = module(y, no_output_bias=True)
    torch.testing.assert_close(out["features"], expected)
    torch.testing.assert_close(
        out["logits"].double().softmax(1).float(), probs, rtol=1e-5, atol=1e-7
    )


def test_unknown_torchscript_is_refused(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(nn.Linear(2, 2)).save(str(tmp_path / "other.pt"))
    with pytest.raises(GenlabError, match="neither"):
        build_from_file(tmp_path / "other.pt")


# --- the pytorch-fid protocol -----------------------------------------------------------------
def pytorch_fid_blocks(net: FIDInceptionV3) -> nn.Sequential:
    """pytorch-fid 0.3.0's `InceptionV3(output_blocks=[3])` blocks 0-3, from our modules."""
    return nn.Sequential(
        net.Conv2d_1a_3x3,
        net.Conv2d_2a_3x3,
        net.Conv2d_2b_3x3,
        nn.MaxPool2d(kernel_size=3, stride=2),
        net.Conv2d_3b_1x1,
        net.Conv2d_4a_3x3,
        nn.MaxPool2d(kernel_size=3, stride=2),
        *(getattr(net, f"Mixed_{name}") for name in ("5b", "5c", "5d", "6a", "6b", "6c")),
        *(getattr(net, f"Mixed_{name}") for name in ("6d", "6e", "7a", "7b", "7c")),
        nn.AdaptiveAvgPool2d(output_size=(1, 1)),
    )


def test_pytorch_fid_protocol_is_its_preprocessing_written_out(network):
    """pytorch-fid: ToTensor (uint8 / 255), F.interpolate bilinear without aligned corners to
    299x299, 2x - 1, the blocks, pool3 squeezed to (B, 2048)."""
    images = torch.randint(0, 256, (2, 3, 37, 30), generator=torch.Generator().manual_seed(1))
    images = images.to(torch.uint8)
    extractor = InceptionExtractor(network, channels_last=False, protocol="pytorch-fid")
    tf = InceptionExtractor(network, channels_last=False)
    with torch.inference_mode():
        x = images.to(torch.float32).div(255)  # torchvision's ToTensor of an 8-bit image
        x = torch.nn.functional.interpolate(
            x, size=(299, 299), mode="bilinear", align_corners=False
        )
        x = 2 * x - 1
        expected = pytorch_fid_blocks(network)(x).squeeze(3).squeeze(2)
        prepared = extractor.preprocess(images.float() / 255)  # samples in [0, 1]
        got = extractor(prepared)["features"]
        tf_prepared = tf.preprocess(images.float() / 255)
    # The same operations on the same shapes in one process: bit-identical, no tolerance.
    torch.testing.assert_close(prepared, x, rtol=0, atol=0)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    # The TF protocol feeds other numbers (another resize grid, (x - 128) / 128): the two
    # protocols' features, hence their FIDs, are not interchangeable.
    assert (tf_prepared - prepared).abs().max() > 1e-2
    described = extractor.describe()["protocol"]
    assert described["name"] == "pytorch-fid" and "0.3.0" in described["reproduces"]
    assert tf.describe()["protocol"]["name"] == "tf"
    with pytest.raises(GenlabError, match="unknown FID protocol"):
        InceptionExtractor(network, protocol="pytorch_fid")
