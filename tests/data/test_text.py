"""tinyshakespeare: checksummed text, character windows shifted by one, download path."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.data import load_dataset, text
from genlab.data.download import RemoteFile
from genlab.data.text import TextDataset, load_text, token_ids
from genlab.errors import GenlabError

SHA = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def test_from_the_shared_data_dir(shared_data_dir, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA_DIR", str(shared_data_dir))
    content = load_text("tinyshakespeare")
    assert hashlib.sha256(content.encode("utf-8")).hexdigest() == SHA
    train = load_dataset("tinyshakespeare", "train", block_size=32)
    val = load_dataset("tinyshakespeare", "val", block_size=32)
    assert isinstance(train, TextDataset) and train.spec.kind == "text"
    assert train.spec.vocab_size == 65 and train.spec.shape == (32,)
    cut = int(0.9 * len(content))
    assert len(train) == cut - 32 and len(val) == len(content) - cut - 32
    x, y = train.batch(torch.tensor([0, 7, len(train) - 1]))
    assert x.shape == y.shape == (3, 32) and x.dtype == torch.int64
    assert train.decode(x[0]) == content[:32] and train.decode(y[1]) == content[8:40]
    assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted by one
    vx, _ = val.batch(torch.tensor([0]))
    assert val.decode(vx[0]) == content[cut : cut + 32]
    test = load_dataset("tinyshakespeare", "test", block_size=32)
    assert len(test) == len(val)  # test is val for now
    with pytest.raises(IndexError):
        train.batch(torch.tensor([len(train)]))


def test_token_file_is_reused_and_joined_splits_do_not_straddle(shared_data_dir, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA_DIR", str(shared_data_dir))
    ids, vocab = token_ids(shared_data_dir / "tinyshakespeare.txt")
    again, _ = token_ids(shared_data_dir / "tinyshakespeare.txt")
    assert isinstance(again, np.memmap) and again.filename == ids.filename
    both = load_dataset("tinyshakespeare", "train+val", block_size=8)
    train = load_dataset("tinyshakespeare", "train", block_size=8)
    assert len(both) == len(train) + len(load_dataset("tinyshakespeare", "val", block_size=8))
    x, _ = both.batch(torch.tensor([len(train), 0]))
    cut = int(0.9 * len(ids))
    assert x[0].tolist() == ids[cut : cut + 8].tolist() and x[1].tolist() == ids[:8].tolist()
    assert vocab == "".join(sorted(set(vocab)))


def test_download_path_from_a_local_server(http_server, tmp_path, monkeypatch):
    body = b"To be, or not to be: that is the question.\n" * 10
    url = http_server.serve("/input.txt", body)
    remote = RemoteFile("tinyshakespeare.txt", (url,), hashlib.sha256(body).hexdigest())
    monkeypatch.setitem(text.TEXT_FILES, "tinyshakespeare", remote)
    monkeypatch.setenv("GENLAB_DATA_DIR", str(tmp_path))
    data = load_dataset("tinyshakespeare", "train", block_size=4)
    assert (tmp_path / "tinyshakespeare.txt").read_bytes() == body
    assert len(data) == int(0.9 * len(body)) - 4
    x, _ = data.batch(torch.tensor([0]))
    assert data.decode(x[0]) == "To b"
    assert data.encode("To b") == x[0].tolist()
    assert any(p.suffix == ".u16" for p in tmp_path.iterdir())  # token file next to the text
    load_dataset("tinyshakespeare", "val", block_size=4)
    assert http_server.hits["/input.txt"] == 1


def test_wrong_checksum_text_is_refused(http_server, tmp_path, monkeypatch):
    url = http_server.serve("/input.txt", b"not shakespeare")
    monkeypatch.setitem(text.TEXT_FILES, "tinyshakespeare", RemoteFile("t.txt", (url,), SHA))
    with pytest.raises(GenlabError, match="sha256"):
        load_text("tinyshakespeare", root=tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(GenlabError, match="did you mean: tinyshakespeare"):
        load_text("tinyshakespear")


def test_read_only_folder_gets_its_token_file_elsewhere(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "corpus.txt").write_text("abcabcabd")
    folder.chmod(0o555)
    try:
        ids, vocab = token_ids(folder / "corpus.txt")
        assert vocab == "abcd" and ids.tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 3]
        assert Path(ids.filename).parent != folder
        assert sorted(p.name for p in folder.iterdir()) == ["corpus.txt"]
        again, _ = token_ids(folder / "corpus.txt")
        assert again.filename == ids.filename
    finally:
        folder.chmod(0o755)
