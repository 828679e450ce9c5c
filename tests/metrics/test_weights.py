"""Weights resolution: explicit path, $GENLAB_WEIGHTS_DIR, the cache, a checked download."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import torch

from genlab.errors import GenlabError
from genlab.metrics import weights
from genlab.metrics.weights import (
    WEIGHTS,
    load_state_dict_file,
    resolve_weights,
    weights_cache,
)


def lpips_heads() -> dict[str, torch.Tensor]:
    return {
        f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1)
        for i, c in enumerate((64, 128, 256, 512, 512))
    }


@pytest.fixture
def fake_lpips_entry(monkeypatch, tmp_path):
    """Point the registry's LPIPS heads at bytes we made (and know the sha256 of)."""
    path = tmp_path / "made.pth"
    torch.save(lpips_heads(), path)
    body = path.read_bytes()
    entry = dataclasses.replace(WEIGHTS["lpips-vgg"], sha256=hashlib.sha256(body).hexdigest())
    monkeypatch.setitem(WEIGHTS, "lpips-vgg", entry)
    return entry, body


def test_missing_file_names_what_to_fetch(monkeypatch, tmp_path):
    monkeypatch.setenv("GENLAB_WEIGHTS_DIR", str(tmp_path / "empty"))
    with pytest.raises(GenlabError) as error:
        resolve_weights("inception-fid")
    message = str(error.value)
    assert "\n" not in message
    for fragment in (
        "pt_inception-2015-12-05-6726825d.pth",
        "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
        "--download",
        "GENLAB_WEIGHTS_DIR",
        "https://",
    ):
        assert fragment in message
    with pytest.raises(GenlabError, match="does not exist"):
        resolve_weights("inception-fid", tmp_path / "nope.pth")
    with pytest.raises(GenlabError, match="unknown weights"):
        resolve_weights("inceptoin")


def test_resolution_order_and_hash_checks(monkeypatch, tmp_path, fake_lpips_entry):
    entry, body = fake_lpips_entry
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("GENLAB_WEIGHTS_DIR", str(folder))
    (folder / "vgg.pth").write_bytes(body)  # the second known name is found too
    found = resolve_weights("lpips-vgg")
    assert found.path == folder / "vgg.pth" and found.verified and found.sha256 == entry.sha256
    # an explicit path wins, and an unknown name is accepted but marked unverified
    other = tmp_path / "mine.pth"
    torch.save(lpips_heads(), other)
    explicit = resolve_weights("lpips-vgg", other)
    assert explicit.path == other and not explicit.verified
    # a file with a known name but the wrong bytes is refused, wherever it is
    (folder / "vgg.pth").write_bytes(body[:-1] + bytes([body[-1] ^ 1]))
    with pytest.raises(GenlabError, match="sha256"):
        resolve_weights("lpips-vgg")
    with pytest.raises(GenlabError, match="not the published one"):
        resolve_weights("lpips-vgg", folder / "vgg.pth")


def test_download_only_when_allowed(monkeypatch, file_server, fake_lpips_entry):
    entry, body = fake_lpips_entry
    base, files = file_server
    monkeypatch.setitem(WEIGHTS, "lpips-vgg", dataclasses.replace(entry, urls=(f"{base}/vgg.pth",)))
    files["/vgg.pth"] = body
    with pytest.raises(GenlabError, match="--download"):
        resolve_weights("lpips-vgg")
    got = resolve_weights("lpips-vgg", download=True)
    assert got.path == weights_cache() / "lpips-vgg-v0.1.pth" and got.verified
    assert got.path.read_bytes() == body
    files.clear()  # now found in the cache, without the network
    assert resolve_weights("lpips-vgg").path == got.path
    got.path.unlink()


def test_download_with_a_wrong_hash_saves_nothing(monkeypatch, file_server, fake_lpips_entry):
    entry, body = fake_lpips_entry
    base, files = file_server
    monkeypatch.setitem(WEIGHTS, "lpips-vgg", dataclasses.replace(entry, urls=(f"{base}/vgg.pth",)))
    files["/vgg.pth"] = body + b"tampered"
    with pytest.raises(GenlabError, match="sha256"):
        resolve_weights("lpips-vgg", download=True)
    assert not (weights_cache() / "lpips-vgg-v0.1.pth").exists()


def test_state_dict_formats(tmp_path):
    state = lpips_heads()
    torch.save(state, tmp_path / "zip.pth")
    torch.save(state, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    from safetensors.torch import save_file

    save_file(state, str(tmp_path / "w.safetensors"))
    for name in ("zip.pth", "legacy.pth", "w.safetensors"):
        loaded = load_state_dict_file(tmp_path / name)
        assert loaded.keys() == state.keys()
        for key in state:
            torch.testing.assert_close(loaded[key], state[key], rtol=0, atol=0)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(GenlabError, match="weights-only"):
        load_state_dict_file(tmp_path / "junk.pth")
    torch.save({"a": [1, 2]}, tmp_path / "nontensor.pth")
    with pytest.raises(GenlabError, match="state dict of tensors"):
        load_state_dict_file(tmp_path / "nontensor.pth")


def test_pickled_code_is_refused(tmp_path):
    """weights_only=True: a file whose unpickling would run code is an error, not a call."""
    import pickle

    class Boom:
        def __reduce__(self):
            return (print, ("this must never run",))

    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"x": Boom()}, f)
    with pytest.raises(GenlabError, match="weights-only"):
        load_state_dict_file(tmp_path / "evil.pth")


def test_every_registry_entry_is_well_formed():
    for key, entry in WEIGHTS.items():
        # 64 hex digits, or a published prefix of at least 8 (see weights.py's docstring)
        assert entry.key == key and 8 <= len(entry.sha256) <= 64 and entry.urls and entry.names
        int(entry.sha256, 16)
    # torch.hub's convention: the file name carries the first hex digits of the sha256
    assert WEIGHTS["inception-fid"].sha256.startswith("6726825d")
    assert WEIGHTS["vgg16"].sha256.startswith("397923af")
    assert weights.cache_dir().name  # resolved from GENLAB_CACHE_DIR in tests
