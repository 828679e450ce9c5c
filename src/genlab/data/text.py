"""Text datasets: named corpora and character-level windows over them (first version).

The character vocabulary is the sorted set of characters of the whole file, so ids are stable
for a given file. The token ids are written once as a little-endian uint16 file next to the text
(`<name>.<sha256 prefix>.u16`, atomic write) and memory-mapped afterwards: loading is then
instant and costs no memory per worker. When the text's folder is read-only (a shared data
folder) the token file goes to a per-user folder under the system temp dir instead. The sha256
prefix in its name means a changed text can never be paired with stale ids.

A later text issue extends this (tokenizers, more corpora); keep this module small.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genlab.data.base import DataSpec
from genlab.data.download import RemoteFile, fetch
from genlab.data.options import int_option
from genlab.data.splits import one_split
from genlab.errors import GenlabError, close_matches

TEXT_FILES = {
    # Karpathy's char-rnn corpus (1115394 characters); sha256 of input.txt at that URL.
    "tinyshakespeare": RemoteFile(
        "tinyshakespeare.txt",
        (
            "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        ),
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        "Copy tinyshakespeare.txt by hand into $GENLAB_DATA_DIR (default ~/.cache/genlab).",
    ),
}
TRAIN_FRACTION = 0.9


def load_text(name: str = "tinyshakespeare", *, root: Path | str | None = None) -> str:
    """The whole text of a named corpus, downloaded (and checksummed) on first use."""
    return text_path(name, root=root).read_text(encoding="utf-8")


def text_path(name: str, *, root: Path | str | None = None) -> Path:
    if name not in TEXT_FILES:
        raise GenlabError(
            f"unknown text {name!r}; known: {', '.join(TEXT_FILES)}{close_matches(name, TEXT_FILES)}"
        )
    return fetch(TEXT_FILES[name], root=root)


def token_ids(path: Path) -> tuple[np.ndarray, str]:
    """(ids as a read-only uint16 memmap, vocabulary) of the characters of a UTF-8 file."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise GenlabError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from e
    if not text:
        raise GenlabError(f"{path} is empty")
    vocab = "".join(sorted(set(text)))
    if len(vocab) > np.iinfo(np.uint16).max:
        raise GenlabError(f"{path} has {len(vocab)} distinct characters, more than uint16 holds")
    name = f"{path.name}.{hashlib.sha256(raw).hexdigest()[:16]}.u16"
    for folder in _cache_folders(path.parent):
        cached = folder / name
        if cached.is_file() and cached.stat().st_size == 2 * len(text):
            try:
                return np.memmap(cached, dtype="<u2", mode="r"), vocab
            except OSError:  # e.g. another user's unreadable file: make our own
                continue
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")  # one code point per char
    table = np.zeros(max(map(ord, vocab)) + 1, dtype="<u2")
    table[[ord(c) for c in vocab]] = np.arange(len(vocab), dtype="<u2")
    ids = table[codes]
    return np.memmap(_write_atomically(ids, name, path.parent), dtype="<u2", mode="r"), vocab


def _cache_folders(text_folder: Path) -> list[Path]:
    """Where token files may live: next to the text, else a per-user temp folder."""
    user = os.getuid() if hasattr(os, "getuid") else "user"
    return [text_folder, Path(tempfile.gettempdir()) / f"genlab-{user}" / "tokens"]


def _writable(folder: Path) -> bool:
    # The mode bits are checked as well as access(): root may write anywhere, but a folder
    # marked read-only (a shared data folder) is meant to stay untouched.
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return os.access(folder, os.W_OK) and bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _write_atomically(ids: np.ndarray, name: str, text_folder: Path) -> Path:
    """Save `ids` as `name` in the first usable cache folder (temp file, fsync, rename)."""
    errors = []
    for folder in _cache_folders(text_folder):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not _writable(folder):
                errors.append(f"{folder} is read-only")
                continue
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(ids.astype("<u2").tobytes())
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(tmp, 0o644)  # mkstemp makes it private; others may share the folder
                os.replace(tmp, folder / name)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return folder / name
        except OSError as e:
            errors.append(f"{folder}: {e.strerror}")
    raise GenlabError(f"cannot write the token file {name}: {'; '.join(errors)}")


class TextDataset:
    """Character windows: example i is (x, y) = (ids[i : i+T], ids[i+1 : i+T+1]), T = block_size.

    `len` is the number of window starts, len(ids) - block_size, so every window has its target.
    """

    def __init__(self, ids: np.ndarray, vocab: str, block_size: int):
        if len(ids) <= block_size:
            raise GenlabError(f"text of {len(ids)} tokens is too short for block_size {block_size}")
        self.ids, self.vocab, self.block_size = ids, vocab, block_size
        self.spec = DataSpec(
            kind="text",
            shape=(block_size,),
            levels=0,
            vocab_size=len(vocab),
            extra={"vocab": vocab},
        )
        self._index = {c: i for i, c in enumerate(vocab)}

    def __len__(self) -> int:
        return len(self.ids) - self.block_size

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        starts = torch.as_tensor(indices, dtype=torch.long).cpu().numpy()
        if starts.size and (starts.min() < 0 or starts.max() >= len(self)):
            raise IndexError(f"window start out of range for {len(self)} windows")
        window = starts[:, None] + np.arange(self.block_size + 1)  # (B, T+1)
        chunk = torch.from_numpy(self.ids[window].astype(np.int64))  # (B, T+1)
        return chunk[:, :-1], chunk[:, 1:]  # x (B, T), y (B, T) shifted by one

    def encode(self, text: str) -> list[int]:
        unknown = sorted(set(text) - self._index.keys())
        if unknown:
            raise GenlabError(f"characters not in the vocabulary: {''.join(unknown)!r}")
        return [self._index[c] for c in text]

    def decode(self, ids: Tensor | list[int]) -> str:
        return "".join(self.vocab[int(i)] for i in ids)


def load_tinyshakespeare(
    split: str = "train", *, root: Path | str | None = None, block_size: int = 64
) -> TextDataset:
    """Tiny Shakespeare (Karpathy's char-rnn corpus), character level, 65 symbols.

    From `data_dir()/tinyshakespeare.txt` (checksummed) or downloaded. Splits: train = the first
    90% of the characters, val = the last 10%; there is no separate test text yet, so test is
    the same as val. Option block_size (default 64): the window length T.
    """
    split = one_split(split)
    block_size = int_option("block_size", block_size, minimum=1)
    ids, vocab = token_ids(text_path("tinyshakespeare", root=root))
    cut = int(TRAIN_FRACTION * len(ids))
    return TextDataset(ids[:cut] if split == "train" else ids[cut:], vocab, block_size)
