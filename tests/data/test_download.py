"""download(): verified, atomic, mirror-aware; tested only against a server on 127.0.0.1."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from genlab.data.download import RemoteFile, download, fetch
from genlab.errors import GenlabError

BODY = b"genlab test payload " * 5000  # 100 kB: several reads
SHA = hashlib.sha256(BODY).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_file_is_saved_with_the_right_bytes(http_server, tmp_path):
    url = http_server.serve("/good.bin", BODY)
    dest = tmp_path / "sub" / "good.bin"
    assert download(url, dest, SHA) == dest
    assert dest.read_bytes() == BODY
    assert leftovers(dest.parent) == ["good.bin"]  # no temporary file left


def test_wrong_checksum_raises_and_leaves_nothing(http_server, tmp_path):
    url = http_server.serve("/bad.bin", BODY[:-1] + b"X")
    dest = tmp_path / "bad.bin"
    with pytest.raises(GenlabError, match="sha256"):
        download(url, dest, SHA)
    assert leftovers(tmp_path) == []


def test_truncated_transfer_raises_and_leaves_nothing(http_server, tmp_path):
    url = http_server.serve("/cut.bin", BODY, truncate=True)
    dest = tmp_path / "cut.bin"
    with pytest.raises(GenlabError, match="cut short"):
        download(url, dest, SHA)
    assert leftovers(tmp_path) == []


def test_second_mirror_is_used_when_the_first_answers_404(http_server, tmp_path):
    http_server.serve("/first/f.bin", b"", status=404)
    second = http_server.serve("/second/f.bin", BODY)
    dest = tmp_path / "f.bin"
    download([http_server.url("/first/f.bin"), second], dest, SHA)
    assert dest.read_bytes() == BODY
    assert http_server.hits["/first/f.bin"] == 1 and http_server.hits["/second/f.bin"] == 1


def test_existing_good_file_is_not_fetched_again(http_server, tmp_path):
    url = http_server.serve("/once.bin", BODY)
    dest = tmp_path / "once.bin"
    download(url, dest, SHA)
    download(url, dest, SHA)
    assert http_server.hits["/once.bin"] == 1


def test_existing_bad_file_is_replaced(http_server, tmp_path):
    url = http_server.serve("/again.bin", BODY)
    dest = tmp_path / "again.bin"
    dest.write_bytes(b"half a file")
    download(url, dest, SHA)
    assert dest.read_bytes() == BODY


def test_connection_refused_says_offline_and_what_to_do(refused_url, tmp_path):
    dest = tmp_path / "x.bin"
    with pytest.raises(GenlabError) as caught:
        download(refused_url, dest, SHA, offline_hint="Use dataset mnist-5k.")
    message = str(caught.value)
    assert "offline" in message and "mnist-5k" in message and str(dest) in message
    assert "\n" not in message
    assert leftovers(tmp_path) == []


def test_fetch_places_the_file_under_the_data_dir(http_server, tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA_DIR", str(tmp_path))
    remote = RemoteFile("corpus/a.txt", (http_server.serve("/a.txt", BODY),), SHA)
    assert fetch(remote) == tmp_path / "corpus" / "a.txt"
    assert fetch(remote, root=tmp_path / "other").read_bytes() == BODY
