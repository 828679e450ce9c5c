"""CIFAR-10 binary reader on a tiny synthetic archive, and the loader from a local server."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.data import images, load_dataset
from genlab.data.download import RemoteFile
from genlab.data.images import CIFAR_RECORD, read_cifar10_archive
from genlab.errors import GenlabError


def _records(rng: np.random.Generator, n: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    pixels = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    rows = np.concatenate([labels[:, None], pixels.reshape(n, -1)], axis=1)
    return rows.tobytes(), pixels, labels


def _archive(path: Path, per_batch: int, *, skip: str = "") -> tuple[np.ndarray, ...]:
    """A cifar-10-binary.tar.gz with `per_batch` records in each of the six batch files."""
    rng = np.random.default_rng(1)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    made = {name: _records(rng, per_batch) for name in names}
    with tarfile.open(path, "w:gz") as archive:
        for name, (data, _, _) in made.items():
            if name == skip:
                continue
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    train_x = np.concatenate([made[n][1] for n in names[:5]])
    train_y = np.concatenate([made[n][2] for n in names[:5]])
    return train_x, train_y, made["test_batch.bin"][1], made["test_batch.bin"][2]


def test_reader_returns_channels_first_images_and_labels(tmp_path):
    expected = _archive(tmp_path / "c.tar.gz", per_batch=3)
    got = read_cifar10_archive(tmp_path / "c.tar.gz")
    assert got[0].shape == (15, 3, 32, 32) and got[2].shape == (3, 3, 32, 32)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    assert CIFAR_RECORD == 3073


def test_reader_rejects_incomplete_or_corrupt_archives(tmp_path):
    _archive(tmp_path / "partial.tar.gz", per_batch=2, skip="test_batch.bin")
    with pytest.raises(GenlabError, match=r"test_batch\.bin"):
        read_cifar10_archive(tmp_path / "partial.tar.gz")
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar file at all")
    with pytest.raises(GenlabError, match="cannot read"):
        read_cifar10_archive(tmp_path / "junk.tar.gz")


def test_loader_end_to_end_from_a_local_server(http_server, tmp_path, monkeypatch):
    train_x, train_y, _, _ = _archive(tmp_path / "c.tar.gz", per_batch=4)
    body = (tmp_path / "c.tar.gz").read_bytes()
    url = http_server.serve("/cifar-10-binary.tar.gz", body)
    remote = RemoteFile("cifar10/cifar-10-binary.tar.gz", (url,), hashlib.sha256(body).hexdigest())
    monkeypatch.setattr(
        images, "CIFAR10", dataclasses.replace(images.CIFAR10, file=remote, n_val=5)
    )
    root = tmp_path / "data"
    sizes = [len(load_dataset("cifar10", s, root=root)) for s in ("train", "val", "test")]
    assert sizes == [15, 5, 4]
    val = load_dataset("cifar10", "val", root=root)
    x, y = val.batch(torch.arange(5))
    assert x.shape == (5, 3, 32, 32) and val.spec.extra["classes"][0] == "airplane"
    torch.testing.assert_close(x, torch.from_numpy(train_x[15:]).float() / 255)
    assert y.tolist() == train_y[15:].tolist()
    assert http_server.hits["/cifar-10-binary.tar.gz"] == 1
