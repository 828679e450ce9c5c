"""IDX reader and the MNIST / Fashion-MNIST loaders, end to end from a local server."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.data import images, load_dataset
from genlab.data.idx import IMAGES_MAGIC, read_idx, write_idx
from genlab.errors import GenlabError


def test_idx_round_trip_gzip_and_plain(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a-idx3-ubyte.gz", array)
    write_idx(tmp_path / "a-idx3-ubyte", array)
    for name in ("a-idx3-ubyte.gz", "a-idx3-ubyte"):
        back = read_idx(tmp_path / name, magic=IMAGES_MAGIC)
        np.testing.assert_array_equal(back, array)
        assert back.flags.writeable
    floats = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(read_idx(_written(tmp_path / "f.gz", floats)), floats)


def _written(path: Path, array: np.ndarray) -> Path:
    write_idx(path, array)
    return path


def test_bad_magic_is_a_clear_error(tmp_path):
    labels = _written(tmp_path / "labels.gz", np.zeros(5, dtype=np.uint8))
    with pytest.raises(GenlabError, match="magic number"):
        read_idx(labels, magic=IMAGES_MAGIC)
    (tmp_path / "junk.gz").write_bytes(gzip.compress(b"\x12\x34\x08\x01" + b"\x00" * 8))
    with pytest.raises(GenlabError, match="not an IDX file"):
        read_idx(tmp_path / "junk.gz")


def test_truncated_or_corrupt_files_are_clear_errors(tmp_path):
    path = _written(tmp_path / "x", np.zeros((4, 2, 2), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(GenlabError, match="truncated or corrupt"):
        read_idx(path)
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + b"\x00" * 100)[:-10])
    with pytest.raises(GenlabError, match="cannot read"):
        read_idx(broken)


def _fake_idx_source(source, server, tmp_path: Path, n_train: int, n_test: int, n_val: int):
    """Serve tiny IDX files in place of the real ones; the source's checksums are theirs."""
    rng = np.random.default_rng(0)
    arrays = [
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_train).astype(np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_test).astype(np.uint8),
    ]
    files = []
    (tmp_path / "made").mkdir()
    for (name, _), array in zip(source.files, arrays, strict=True):
        body = _written(tmp_path / "made" / name, array).read_bytes()
        server.serve(f"/{source.folder}/{name}", body)
        files.append((name, hashlib.sha256(body).hexdigest()))
    mirrors = (f"{server.base}/missing/", f"{server.base}/{source.folder}/")  # first one 404s
    return dataclasses.replace(source, mirrors=mirrors, files=tuple(files), n_val=n_val), arrays


@pytest.mark.parametrize(
    ("attribute", "dataset"), [("MNIST", "mnist"), ("FASHION_MNIST", "fashion-mnist")]
)
def test_loader_end_to_end_from_a_local_server(
    attribute, dataset, http_server, tmp_path, monkeypatch
):
    fake, arrays = _fake_idx_source(
        getattr(images, attribute), http_server, tmp_path, n_train=12, n_test=5, n_val=4
    )
    monkeypatch.setattr(images, attribute, fake)
    root = tmp_path / "data"
    train = load_dataset(dataset, "train", root=root)
    val = load_dataset(dataset, "val", root=root)
    test = load_dataset(dataset, "test", root=root)
    assert (len(train), len(val), len(test)) == (8, 4, 5)
    assert train.spec.shape == (1, 28, 28) and train.spec.num_classes == 10
    x, y = val.batch(torch.arange(4))
    assert x.dtype == torch.float32 and x.shape == (4, 1, 28, 28)
    torch.testing.assert_close(x, torch.from_numpy(arrays[0][8:, None]).float() / 255)
    assert y.tolist() == arrays[1][8:].tolist()
    assert len(load_dataset(dataset, "train+val", root=root)) == 12
    assert sorted(p.name for p in (root / fake.folder).iterdir()) == sorted(
        n for n, _ in fake.files
    )


def test_mnist_offline_error_names_mnist_5k(refused_url, tmp_path, monkeypatch):
    base = refused_url.rsplit("/", 1)[0] + "/"
    monkeypatch.setattr(images, "MNIST", dataclasses.replace(images.MNIST, mirrors=(base,)))
    with pytest.raises(GenlabError, match="offline") as caught:
        load_dataset("mnist", "train", root=tmp_path)
    assert "mnist-5k" in str(caught.value) and str(tmp_path / "mnist") in str(caught.value)


def test_pinned_checksums_look_like_sha256():
    for source in (images.MNIST, images.FASHION_MNIST):
        assert len(source.files) == 4
        for _, sha in source.files:
            assert len(sha) == 64 and int(sha, 16) >= 0
    assert len(images.CIFAR10.file.sha256) == 64
