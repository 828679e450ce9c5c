"""Text datasets: a corpus (tinyshakespeare, a UTF-8 file, a folder of .txt files) as token windows.

Splits are nanoGPT's: the first 90% of the characters are train, the last 10% val; there is no
separate test text, so test is val. Each part is encoded on its own (a token never straddles the
cut). The char vocabulary is every character of the whole text (65 for tinyshakespeare, as in
nanoGPT), so val never meets an unknown character; word and BPE tokenizers are trained on the
train part only, so nothing leaks from val into the vocabulary.

Caching: the trained tokenizer and each part's token ids are written once, atomically, and the
ids are memory-mapped afterwards (instant, no memory per worker). Files go to genlab's cache,
`$GENLAB_CACHE_DIR/tokens` (default ~/.cache/genlab/tokens), never next to the user's text (their
folder stays as it was, and may be read-only); when the cache is read-only too, to a per-user
folder under the system temp dir. Names carry the text's sha256 prefix, and the ids file also
a hash of the tokenizer's description and the split, so a changed text or tokenizer can never
be paired with stale ids, and two texts of the same name never share files:
`<name>.<sha>.<kind>[size].tokenizer.json` and
`<name>.<sha>.<kind>-<tokenizer hash>.<train|val>.u16` (`.u32` above 65536 tokens), little-endian.
Each load still hashes the text once (a sequential read, about 1 s per GB) to find its files.

Memory stays bounded for corpora larger than memory: files are read `CHUNK_BYTES` at a time and
decoded incrementally (so a cut never splits a UTF-8 character); for word and BPE the pieces are
re-cut between a non-space and a space character, a place no word piece or BPE pre-token ever
spans, so encoding chunk by chunk gives exactly the ids of a one-shot encode. (A stretch of text
with no whitespace at all is held in memory whole until whitespace or the end comes.)
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch import Tensor

from genlab.data.base import DataSpec
from genlab.data.download import RemoteFile, cache_dir, fetch
from genlab.data.options import choice_option, int_option
from genlab.data.splits import one_split
from genlab.errors import GenlabError, close_matches
from genlab.tokenizers import (
    KINDS,
    WHITESPACE,
    CharTokenizer,
    Tokenizer,
    check_kind,
    load_tokenizer,
    open_tokenizer,
    resolve_vocab_size,
    train_tokenizer,
)

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
CHUNK_BYTES = 1 << 20  # how much of a file is read (and encoded) at a time
_SPACES = frozenset(WHITESPACE)


def load_text(name: str = "tinyshakespeare", *, root: Path | str | None = None) -> str:
    """The whole text of a named corpus, downloaded (and checksummed) on first use."""
    return text_path(name, root=root).read_text(encoding="utf-8")


def text_path(name: str, *, root: Path | str | None = None) -> Path:
    if name not in TEXT_FILES:
        raise GenlabError(
            f"unknown text {name!r}; known: {', '.join(TEXT_FILES)}{close_matches(name, TEXT_FILES)}"
        )
    return fetch(TEXT_FILES[name], root=root)


@dataclass(frozen=True)
class TextSource:
    """A text: one UTF-8 file, or a folder's `*.txt` files (sorted by relative path) joined by "\\n"."""

    name: str  # how messages call it, e.g. "text:notes" or "tinyshakespeare"
    path: Path  # the file or folder
    files: tuple[Path, ...]

    @property
    def cache_stem(self) -> str:
        return self.path.name or "text"


def text_source(path: Path | str, *, name: str | None = None) -> TextSource:
    """Check that `path` is a non-empty text file or a folder with .txt files in it."""
    path = Path(path).expanduser()
    name = name or f"text:{path}"
    if not path.exists():
        raise GenlabError(f"{name}: no such file or folder")
    if path.is_dir():
        files = sorted(
            (p for p in path.rglob("*.txt") if p.is_file()),
            key=lambda p: p.relative_to(path).as_posix(),
        )
        if not files:
            raise GenlabError(f"{name}: no .txt files in this folder or its subfolders")
    else:
        files = [path]
    if sum(p.stat().st_size for p in files) == 0 and len(files) == 1:
        raise GenlabError(f"{name} is empty")
    return TextSource(name, path, tuple(files))


def _read_pieces(source: TextSource, chunk_bytes: int) -> Iterator[str]:
    """The text in pieces of at most `chunk_bytes` characters, decoded incrementally."""
    for k, path in enumerate(source.files):
        if k:
            yield "\n"
        decoder = codecs.getincrementaldecoder("utf-8")()  # strict: bad bytes are an error
        offset = 0  # bytes of this file given to the decoder so far
        where = source.name
        if path != source.path:
            where = f"{source.name}: {path.relative_to(source.path).as_posix()}"
        try:
            with path.open("rb") as f:
                while True:
                    data = f.read(chunk_bytes)
                    held = len(decoder.getstate()[0])  # an incomplete character from before
                    try:
                        text = decoder.decode(data, final=not data)
                    except UnicodeDecodeError as e:
                        raise GenlabError(
                            f"{where} is not UTF-8 text ({e.reason} at byte "
                            f"{offset - held + e.start})"
                        ) from None
                    offset += len(data)
                    if text:
                        yield text
                    if not data:
                        break
        except OSError as e:
            raise GenlabError(f"cannot read {path} ({e.strerror or e})") from e


def _sha256(source: TextSource, chunk_bytes: int) -> str:
    """sha256 of the joined text's bytes (files and the "\\n" between them)."""
    digest = hashlib.sha256()
    for k, path in enumerate(source.files):
        if k:
            digest.update(b"\n")
        try:
            with path.open("rb") as f:
                while data := f.read(chunk_bytes):
                    digest.update(data)
        except OSError as e:
            raise GenlabError(f"cannot read {path} ({e.strerror or e})") from e
    return digest.hexdigest()


def _char_range(pieces: Iterable[str], start: int, stop: int) -> Iterator[str]:
    """The characters [start, stop) of the text that `pieces` spell, still in pieces."""
    position = 0
    for piece in pieces:
        end = position + len(piece)
        if end > start and position < stop:
            yield piece[max(start - position, 0) : min(stop, end) - position]
        position = end
        if position >= stop:
            return


def _cut_at_whitespace(pieces: Iterable[str]) -> Iterator[str]:
    """Re-cut `pieces` only where a non-space character is followed by a space character.

    Invariant: `pending` has no such place at an index >= 1, so only the new text is searched.
    """
    pending = ""
    for piece in pieces:
        searched = len(pending)
        pending += piece
        cut = _last_cut(pending, max(searched, 1))
        if cut:
            yield pending[:cut]
            pending = pending[cut:]
    if pending:
        yield pending


def _last_cut(text: str, start: int) -> int:
    """The last i >= start with text[i-1] not a space and text[i] a space, else 0."""
    for i in range(len(text) - 1, start - 1, -1):
        if text[i] in _SPACES and text[i - 1] not in _SPACES:
            return i
    return 0


# How the text is cut into chunks that a tokenizer kind encodes one by one, exactly as it would
# encode the whole: a character is never split, a word or BPE pre-token never spans a
# non-space/space boundary.
CHUNKING: dict[str, Callable[[Iterable[str]], Iterable[str]]] = {
    "char": lambda chunks: chunks,
    "word": _cut_at_whitespace,
    "bpe": _cut_at_whitespace,
}


def text_chunks(
    source: TextSource, start: int, stop: int, *, kind: str, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[str]:
    """Characters [start, stop) of `source` in chunks that `kind` can encode one by one."""
    return iter(CHUNKING[kind](_char_range(_read_pieces(source, chunk_bytes), start, stop)))


def _scan(source: TextSource, chunk_bytes: int, *, collect: bool) -> tuple[int, set[str]]:
    """(number of characters, the set of characters if `collect`); checks the text is UTF-8."""
    length, seen = 0, set()
    for piece in _read_pieces(source, chunk_bytes):
        length += len(piece)
        if collect:
            seen.update(piece)
    return length, seen


def _char_vocabulary(
    source: TextSource, kind: str, size: int | None, chunk_bytes: int
) -> tuple[Tokenizer, int]:
    """char: every character of the whole text, so that val never meets an unknown one (one
    pass, which also counts the characters)."""
    length, chars = _scan(source, chunk_bytes, collect=True)
    return CharTokenizer("".join(chars)), length


def _trained_on_train_part(
    source: TextSource, kind: str, size: int | None, chunk_bytes: int
) -> tuple[Tokenizer, int]:
    """word, bpe: trained on the train part only, so nothing leaks from val."""
    length, _ = _scan(source, chunk_bytes, collect=False)
    train = text_chunks(source, 0, _cut(length), kind=kind, chunk_bytes=chunk_bytes)
    return train_tokenizer(kind, train, size), length


# tokenizer kind -> (source, kind, vocab_size, chunk_bytes) -> (tokenizer, characters in the text)
TOKENIZER_BUILDERS: dict[str, Callable[..., tuple[Tokenizer, int]]] = {
    "char": _char_vocabulary,
    "word": _trained_on_train_part,
    "bpe": _trained_on_train_part,
}


def token_ids(
    source: TextSource | Path | str,
    split: str = "train",
    *,
    tokenizer: str | Tokenizer = "char",
    vocab_size: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> tuple[np.ndarray, Tokenizer]:
    """(ids of one split as a read-only memmap, the tokenizer), made once and cached on disk.

    `tokenizer`: a kind to train on this text ("char", "word", "bpe"), or a ready tokenizer
    (e.g. a pretrained model's, from `open_tokenizer`). train: the first 90% of the characters;
    val and test: the last 10%. `chunk_bytes` is how much is read and encoded at a time (the
    result does not depend on it).
    """
    if not isinstance(source, TextSource):
        source = text_source(source)
    part = "train" if one_split(split) == "train" else "val"
    stem = f"{source.cache_stem}.{_sha256(source, chunk_bytes)[:16]}"
    length = None  # characters in the whole text, counted only when something must be made
    if isinstance(tokenizer, str):
        kind = check_kind(tokenizer)
        size = resolve_vocab_size(kind, vocab_size)
        tokenizer_name = f"{stem}.{kind}{size or ''}.tokenizer.json"
        tok = _cached_tokenizer(tokenizer_name)
    else:
        if vocab_size is not None and vocab_size != tokenizer.vocab_size:
            raise GenlabError(
                f"vocab_size is the given tokenizer's ({tokenizer.vocab_size}), not {vocab_size}"
            )
        kind, size, tok = tokenizer.kind, None, tokenizer
    if tok is None:
        tok, length = TOKENIZER_BUILDERS[kind](source, kind, size, chunk_bytes)
        described = json.dumps(tok.to_dict(), ensure_ascii=False).encode("utf-8")
        _write_atomically(tokenizer_name, lambda f: f.write(described))

    wide = tok.vocab_size > 1 << 16
    dtype, suffix = ("<u4", "u32") if wide else ("<u2", "u16")
    ids_name = f"{stem}.{kind}-{_digest(tok)}.{part}.{suffix}"
    cached = _cached_ids(ids_name, dtype)
    if cached is not None:
        return cached, tok
    if length is None:
        length, _ = _scan(source, chunk_bytes, collect=False)
    start, stop = (0, _cut(length)) if part == "train" else (_cut(length), length)
    encoder = tok  # a name the closure can see as non-optional

    def write(f: BinaryIO) -> None:
        for chunk in text_chunks(source, start, stop, kind=kind, chunk_bytes=chunk_bytes):
            f.write(np.asarray(encoder.encode(chunk), dtype=dtype).tobytes())

    return _open_ids(_write_atomically(ids_name, write), dtype), tok


def _cut(length: int) -> int:
    return int(TRAIN_FRACTION * length)


def _digest(tok: Tokenizer) -> str:
    described = json.dumps(tok.to_dict(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(described.encode("utf-8")).hexdigest()[:12]


def _cached_tokenizer(name: str) -> Tokenizer | None:
    for folder in _cache_folders():
        if (folder / name).is_file():
            try:
                return load_tokenizer(folder / name)
            except GenlabError:  # unreadable or damaged: make it again
                continue
    return None


def _cached_ids(name: str, dtype: str) -> np.ndarray | None:
    for folder in _cache_folders():
        path = folder / name
        if path.is_file() and path.stat().st_size % np.dtype(dtype).itemsize == 0:
            try:
                return _open_ids(path, dtype)
            except OSError:  # e.g. another user's unreadable file: make our own
                continue
    return None


def _open_ids(path: Path, dtype: str) -> np.ndarray:
    if path.stat().st_size == 0:  # mmap cannot map an empty file
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r")


def _cache_folders() -> list[Path]:
    """Where token files may live: genlab's cache, else (read-only) a per-user temp folder."""
    user = os.getuid() if hasattr(os, "getuid") else "user"
    return [cache_dir() / "tokens", Path(tempfile.gettempdir()) / f"genlab-{user}" / "tokens"]


def _writable(folder: Path) -> bool:
    """Whether `folder`, or the nearest existing folder above it (where it would be made),
    may be written to."""
    # The mode bits are checked as well as access(): root may write anywhere, but a folder
    # marked read-only (a shared cache) is meant to stay untouched.
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return os.access(folder, os.W_OK) and bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _write_atomically(name: str, write: Callable[[BinaryIO], object]) -> Path:
    """Make `name` in the first usable cache folder from `write(file)` (temp, fsync, rename)."""
    errors = []
    for folder in _cache_folders():
        try:
            if not _writable(folder):
                errors.append(f"{folder} is read-only")
                continue
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
            try:
                with os.fdopen(fd, "wb") as f:
                    write(f)
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
    raise GenlabError(f"cannot write the cache file {name}: {'; '.join(errors)}")


class TextDataset:
    """Token windows: example i is (x, y) = (ids[s : s+T], ids[s+1 : s+T+1]) with s = i * stride,
    T = block_size.

    The train split has a window at every token (stride 1: the loop draws random windows, as
    nanoGPT does); val and test have non-overlapping windows (stride T), so one pass over them
    scores every token of the split once.
    """

    def __init__(
        self,
        ids: np.ndarray,
        tokenizer: Tokenizer,
        block_size: int,
        *,
        name: str = "",
        stride: int = 1,
    ):
        if len(ids) <= block_size:
            where = f"{name}: " if name else ""
            raise GenlabError(
                f"{where}text of {len(ids)} tokens is too short for block_size {block_size} "
                f"(needs more than {block_size})"
            )
        self.ids, self.tokenizer, self.block_size, self.stride = ids, tokenizer, block_size, stride
        self.spec = DataSpec(
            kind="text",
            shape=(block_size,),
            levels=0,
            vocab_size=tokenizer.vocab_size,
            extra={"tokenizer": tokenizer},
        )

    def __len__(self) -> int:
        return (len(self.ids) - self.block_size - 1) // self.stride + 1

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long).cpu().numpy()
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"window index out of range for {len(self)} windows")
        window = index[:, None] * self.stride + np.arange(self.block_size + 1)  # (B, T+1)
        chunk = torch.from_numpy(self.ids[window].astype(np.int64))  # (B, T+1)
        return chunk[:, :-1], chunk[:, 1:]  # x (B, T), y (B, T) shifted by one

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def decode(self, ids: Tensor | Iterable[int]) -> str:
        return self.tokenizer.decode(ids)


def _options(
    split: str, tokenizer: object, vocab_size: object, block_size: object
) -> tuple[str, str | Tokenizer, int | None, int]:
    """The boundary checks every text loader shares: (split, tokenizer, vocab_size, block_size).

    `tokenizer` is a kind to train, or a path to a ready one (a file or a model folder: see
    genlab.tokenizers.open_tokenizer)."""
    split = one_split(split)
    block_size = int_option("block_size", block_size, minimum=1)
    if isinstance(tokenizer, str) and tokenizer not in KINDS and _looks_like_path(tokenizer):
        tok = open_tokenizer(tokenizer)
        if vocab_size is not None:
            raise GenlabError("vocab_size comes with a tokenizer file; leave the option out")
        return split, tok, None, block_size
    kind = choice_option("tokenizer", tokenizer, KINDS)
    return split, kind, resolve_vocab_size(kind, vocab_size), block_size


def _looks_like_path(text: str) -> bool:
    return "/" in text or os.sep in text or text.endswith(".json") or Path(text).exists()


def _windows(
    source: TextSource,
    split: str,
    kind: str | Tokenizer,
    vocab_size: int | None,
    block_size: int,
) -> TextDataset:
    ids, tok = token_ids(source, split, tokenizer=kind, vocab_size=vocab_size)
    stride = 1 if split == "train" else block_size  # evaluation: every token once
    return TextDataset(ids, tok, block_size, name=f"{source.name} {split} split", stride=stride)


def load_text_dataset(
    path: str,
    split: str = "train",
    *,
    tokenizer: str = "char",
    vocab_size: int | None = None,
    block_size: int = 64,
) -> TextDataset:
    """`text:PATH`: a UTF-8 file, or every .txt file under a folder (sorted, joined by "\\n").

    Options: tokenizer ("char", default: every character of the text; "word"; "bpe"; or the
    path of a ready tokenizer: a tokenizer.json or a Hugging Face model folder),
    vocab_size (word: default 5000, at least 2; bpe: default 2000, at least 256), block_size
    (default 64): the window length T. Splits: train = the first 90% of the characters,
    val = the last 10%; test is the same as val.
    """
    checked = _options(split, tokenizer, vocab_size, block_size)
    return _windows(text_source(path), *checked)


def load_tinyshakespeare(
    split: str = "train",
    *,
    root: Path | str | None = None,
    tokenizer: str = "char",
    vocab_size: int | None = None,
    block_size: int = 64,
) -> TextDataset:
    """Tiny Shakespeare (Karpathy's char-rnn corpus); char level has nanoGPT's 65 symbols.

    From `data_dir()/tinyshakespeare.txt` (checksummed) or downloaded. Options and splits as
    for `text:PATH` (train = the first 90% of the characters, val = test = the last 10%).
    """
    checked = _options(split, tokenizer, vocab_size, block_size)  # before any download
    source = text_source(text_path("tinyshakespeare", root=root), name="tinyshakespeare")
    return _windows(source, *checked)
