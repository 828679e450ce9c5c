"""Text datasets: tinyshakespeare and text:PATH, tokenizers, splits, chunking, the token cache."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.data import dataset_spec, list_datasets, load_dataset, text
from genlab.data.download import RemoteFile
from genlab.data.text import TextDataset, load_text, text_source, token_ids
from genlab.errors import GenlabError
from genlab.tokenizers import CharTokenizer, Tokenizer

SHA = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


@pytest.fixture
def token_cache(tmp_path, monkeypatch) -> Path:
    """A fresh GENLAB_CACHE_DIR for this test; the folder where its token files go."""
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "tokens"


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_from_the_shared_data_dir(shared_data_dir, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA_DIR", str(shared_data_dir))
    content = load_text("tinyshakespeare")
    assert hashlib.sha256(content.encode("utf-8")).hexdigest() == SHA
    train = load_dataset("tinyshakespeare", "train", block_size=32)
    val = load_dataset("tinyshakespeare", "val", block_size=32)
    assert isinstance(train, TextDataset) and train.spec.kind == "text"
    assert train.spec.vocab_size == 65 and train.spec.shape == (32,)
    cut = int(0.9 * len(content))
    # train: a window at every token; val: non-overlapping windows (every token scored once)
    assert len(train) == cut - 32 and len(val) == (len(content) - cut - 33) // 32 + 1
    x, y = train.batch(torch.tensor([0, 7, len(train) - 1]))
    assert x.shape == y.shape == (3, 32) and x.dtype == torch.int64
    assert train.decode(x[0]) == content[:32] and train.decode(y[1]) == content[8:40]
    assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted by one
    vx, vy = val.batch(torch.tensor([0, 1, len(val) - 1]))
    assert val.decode(vx[0]) == content[cut : cut + 32]
    assert val.decode(vx[1]) == content[cut + 32 : cut + 64]
    assert val.decode(vy[2])[-1] in content[-33:]
    test = load_dataset("tinyshakespeare", "test", block_size=32)
    assert len(test) == len(val)  # test is val for now
    with pytest.raises(IndexError):
        train.batch(torch.tensor([len(train)]))


def test_token_file_is_reused_and_joined_splits_do_not_straddle(shared_data_dir, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA_DIR", str(shared_data_dir))
    ids, tok = token_ids(shared_data_dir / "tinyshakespeare.txt", "val")
    again, _ = token_ids(shared_data_dir / "tinyshakespeare.txt", "test")  # test is val
    assert isinstance(again, np.memmap) and again.filename == ids.filename
    both = load_dataset("tinyshakespeare", "train+val", block_size=8)
    train = load_dataset("tinyshakespeare", "train", block_size=8)
    assert len(both) == len(train) + len(load_dataset("tinyshakespeare", "val", block_size=8))
    x, _ = both.batch(torch.tensor([len(train), 0]))
    assert x[0].tolist() == ids[:8].tolist() and x[1].tolist() == train.ids[:8].tolist()
    assert isinstance(tok, CharTokenizer) and tok.vocab == "".join(sorted(set(tok.vocab)))


def test_download_path_from_a_local_server(http_server, tmp_path, monkeypatch, token_cache):
    body = b"To be, or not to be: that is the question.\n" * 10
    url = http_server.serve("/input.txt", body)
    remote = RemoteFile("tinyshakespeare.txt", (url,), hashlib.sha256(body).hexdigest())
    monkeypatch.setitem(text.TEXT_FILES, "tinyshakespeare", remote)
    monkeypatch.setenv("GENLAB_DATA_DIR", str(tmp_path / "data"))
    data = load_dataset("tinyshakespeare", "train", block_size=4)
    assert (tmp_path / "data" / "tinyshakespeare.txt").read_bytes() == body
    assert len(data) == int(0.9 * len(body)) - 4
    x, _ = data.batch(torch.tensor([0]))
    assert data.decode(x[0]) == "To b"
    assert data.encode("To b") == x[0].tolist()
    assert files_in(tmp_path / "data") == ["tinyshakespeare.txt"]  # token files: in the cache
    assert any(p.suffix == ".u16" for p in token_cache.iterdir())
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


def test_token_files_go_to_the_cache_and_are_reused(tmp_path, token_cache, monkeypatch):
    """Nothing is written beside the user's text; a second load maps the same file."""
    path = write(tmp_path / "my.txt", "abcabcabd")
    ids, tok = token_ids(path, "val")
    assert tok.to_dict()["vocab"] == "abcd" and ids.tolist() == [3]  # the last 10%
    assert files_in(tmp_path) == ["cache", "my.txt"]
    assert Path(ids.filename).parent == token_cache and str(ids.filename).endswith(".val.u16")
    made = files_in(token_cache)
    assert len(made) == 2 and all(name.startswith("my.txt.") for name in made)

    def no_encoding(*args, **kwargs):
        raise AssertionError("the cached ids should have been used")

    monkeypatch.setattr(text, "text_chunks", no_encoding)
    again, _ = token_ids(path, "val")
    assert again.filename == ids.filename and files_in(token_cache) == made


def test_read_only_text_and_cache_folders_use_a_temp_folder(tmp_path, monkeypatch):
    shared, cache = tmp_path / "shared", tmp_path / "cache"
    write(shared / "corpus.txt", "abcabcabd")
    cache.mkdir()
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(cache))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    shared.chmod(0o555)
    cache.chmod(0o555)  # even root, who may write anyway, leaves a read-only folder alone
    try:
        ids, tok = token_ids(shared / "corpus.txt", "val")
        assert tok.to_dict()["vocab"] == "abcd" and ids.tolist() == [3]
        fallback = Path(ids.filename).parent  # tmp/genlab-<uid>/tokens
        assert fallback.name == "tokens" and fallback.parent.parent == tmp_path / "tmp"
        assert files_in(shared) == ["corpus.txt"] and files_in(cache) == []
        again, _ = token_ids(shared / "corpus.txt", "val")
        assert again.filename == ids.filename
    finally:
        shared.chmod(0o755)
        cache.chmod(0o755)


WORDS = ["the", "king", "queen", "crown", "café", "naïve", "日本", "speak", "hear", "🎉"]
WORDS += ["night", "day,", "fair", "foul.", "Zoë", "it's", "!\x1c"]  # \x1c: not Unicode space
SPACES = [" ", " ", " ", "  ", "\n", "\n\n", "\t", "\u3000", " \n", "\x85"]


def corpus(n: int = 1500, seed: int = 0) -> str:
    """Words with accents, CJK, emoji and assorted whitespace (a fixed pseudo-random mix)."""
    rng = np.random.default_rng(seed)
    words = rng.choice(WORDS, n)
    spaces = rng.choice(SPACES, n)
    return "".join(f"{w}{s}" for w, s in zip(words, spaces, strict=True))


def write(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


OPTIONS = {"char": {}, "word": {"vocab_size": 40}, "bpe": {"vocab_size": 300}}


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_text_file_with_each_tokenizer(tmp_path, kind):
    content = corpus() + " Zyzzyva"  # a word only the val part has
    path = write(tmp_path / "corpus.txt", content)
    options = {"tokenizer": kind, **OPTIONS[kind], "block_size": 16}
    train = load_dataset(f"text:{path}", "train", **options)
    val = load_dataset(f"text:{path}", "val", **options)
    assert isinstance(train, TextDataset) and isinstance(train.tokenizer, Tokenizer)
    tok = train.tokenizer
    assert train.spec.kind == "text" and train.spec.shape == (16,) and train.spec.levels == 0
    assert train.spec.vocab_size == tok.vocab_size and train.spec.extra["tokenizer"] is tok
    cut = int(0.9 * len(content))
    assert train.ids.tolist() == tok.encode(content[:cut])  # nanoGPT's split, by characters
    assert val.ids.tolist() == tok.encode(content[cut:])
    assert val.tokenizer.to_dict() == tok.to_dict()
    assert train.ids.dtype == np.dtype("<u2") and len(train) == len(train.ids) - 16
    x, y = train.batch(torch.tensor([3]))
    assert train.decode(x[0]) == tok.decode(train.ids[3:19].tolist())
    assert train.encode("king queen") == tok.encode("king queen")
    assert torch.equal(x[:, 1:], y[:, :-1])
    if kind == "char":
        assert tok.vocab_size == len(set(content))  # the whole text: val has no unknowns
        assert set("Zyzzyva") <= set(tok.to_dict()["vocab"])
    else:
        assert tok.decode(train.ids.tolist()) == content[:cut]
    if kind == "word":  # trained on train only: val's new word is unknown
        assert tok.encode(" Zyzzyva")[-1] == 0


def test_text_folder_joins_its_txt_files_sorted_by_relative_path(tmp_path, token_cache):
    folder = tmp_path / "books"
    write(folder / "b.txt", "second book\n")
    write(folder / "a" / "z.txt", "first book")
    write(folder / "c" / "notes.md", "not a text file")
    write(folder / "c" / "d.txt", "third")
    joined = "first book\nsecond book\n\nthird"
    train = load_dataset(f"text:{folder}", "train", block_size=4)
    val = load_dataset(f"text:{folder}", "val", block_size=1)
    tok = train.tokenizer
    assert tok.decode(train.ids.tolist()) + tok.decode(val.ids.tolist()) == joined
    assert len(train.ids) == int(0.9 * len(joined)) and "#" not in tok.to_dict()["vocab"]
    assert not any(p.suffix == ".u16" for p in tmp_path.rglob("*") if token_cache not in p.parents)
    assert any(p.name.startswith("books.") and p.suffix == ".u16" for p in token_cache.iterdir())
    assert dataset_spec(f"text:{folder}", block_size=4).vocab_size == len(set(joined))
    assert "text:PATH" in dict(list_datasets())


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_chunked_processing_equals_one_shot(tmp_path, kind, monkeypatch):
    content = corpus(n=600, seed=1)
    size = {"char": None, **{k: v["vocab_size"] for k, v in OPTIONS.items() if v}}[kind]
    small = write(tmp_path / "small" / "c.txt", content)
    whole = write(tmp_path / "whole" / "c.txt", content)
    cut = int(0.9 * len(content))
    for split, part in [("train", content[:cut]), ("val", content[cut:])]:
        # 7-byte reads cut inside UTF-8 characters, words and whitespace runs; each in its own
        # cache, since the same text would otherwise find the other's files
        monkeypatch.setenv("GENLAB_CACHE_DIR", str(small.parent))
        ids, tok = token_ids(small, split, tokenizer=kind, vocab_size=size, chunk_bytes=7)
        monkeypatch.setenv("GENLAB_CACHE_DIR", str(whole.parent))
        one, one_tok = token_ids(whole, split, tokenizer=kind, vocab_size=size)
        assert tok.to_dict() == one_tok.to_dict()
        assert ids.tolist() == one.tolist() == tok.encode(part)
        assert Path(ids.filename).parent == small.parent / "tokens"


def test_token_cache_is_reused_and_invalidated_when_the_text_changes(
    tmp_path, monkeypatch, token_cache
):
    path = write(tmp_path / "corpus.txt", corpus(n=400))
    options = {"tokenizer": "bpe", "vocab_size": 300, "block_size": 8}
    first = load_dataset(f"text:{path}", "train", **options)
    cached = files_in(token_cache)
    ids_file, tokenizer_file = cached
    assert tokenizer_file.endswith(".bpe300.tokenizer.json")
    assert ids_file.endswith(".train.u16") and ".bpe-" in ids_file

    def no_training(*args, **kwargs):
        raise AssertionError("the cached tokenizer should have been used")

    monkeypatch.setattr(text, "train_tokenizer", no_training)
    again = load_dataset(f"text:{path}", "train", **options)
    assert again.ids.filename == first.ids.filename
    assert again.tokenizer.to_dict() == first.tokenizer.to_dict()
    assert files_in(token_cache) == cached and files_in(tmp_path) == ["cache", "corpus.txt"]
    monkeypatch.undo()

    changed = corpus(n=400, seed=5)
    write(path, changed)
    fresh = load_dataset(f"text:{path}", "train", **options)
    assert fresh.ids.filename != first.ids.filename
    assert fresh.tokenizer.decode(fresh.ids.tolist()) == changed[: int(0.9 * len(changed))]
    # another vocab_size is another tokenizer, and so other ids
    other = load_dataset(f"text:{path}", "train", **{**options, "vocab_size": 260})
    assert other.ids.filename != fresh.ids.filename and other.spec.vocab_size == 260


def test_text_errors_are_one_line_and_precise(tmp_path):
    def error(name: str, split: str = "train", **options: object) -> str:
        with pytest.raises(GenlabError) as info:
            load_dataset(name, split, **options)
        message = str(info.value)
        assert "\n" not in message
        return message

    assert "no such file or folder" in error(f"text:{tmp_path / 'missing.txt'}")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"caf\xe9 au lait")
    assert "is not UTF-8 text (invalid continuation byte at byte 3)" in error(f"text:{bad}")
    late = tmp_path / "late.txt"
    late.write_bytes("été 1234".encode() + b"\xff")  # é is 2 bytes: the bad byte is byte 10
    with pytest.raises(GenlabError, match="invalid start byte at byte 10"):
        token_ids(text_source(late), chunk_bytes=4)  # found across 4-byte reads
    cut_short = write(tmp_path / "cut.txt", "")
    cut_short.write_bytes("ab€".encode()[:-1])
    assert "unexpected end of data at byte 2" in error(f"text:{cut_short}")
    assert "is empty" in error(f"text:{write(tmp_path / 'empty.txt', '')}")
    (tmp_path / "nothing").mkdir()
    write(tmp_path / "nothing" / "a.md", "no txt here")
    assert "no .txt files" in error(f"text:{tmp_path / 'nothing'}")
    short = write(tmp_path / "short.txt", "hello world")
    assert "too short for block_size 64" in error(f"text:{short}")
    assert "did you mean: bpe" in error(f"text:{short}", tokenizer="bep")
    assert "between 256 and" in error(f"text:{short}", tokenizer="bpe", vocab_size=10)
    assert "must be an integer" in error(f"text:{short}", tokenizer="word", vocab_size="5")
    assert "vocab_size is for the word and bpe" in error(f"text:{short}", vocab_size=100)
    assert "needs an argument" in error("text:")
    assert "unknown option 'vocab'" in error(f"text:{short}", vocab=10)
