"""Tokenizers for the text models: characters, words and byte-level BPE, behind one interface.

- `CharTokenizer`: one id per character, ids = positions in the sorted vocabulary (nanoGPT's
  char level). A character outside the vocabulary is an error, not a silent substitution.
- `WordTokenizer`: words, single punctuation marks and whitespace runs, the most frequent pieces
  of the training text; anything else encodes to `<unk>` (id 0), which decodes to "<unk>".
  Because whitespace runs are pieces too, decode(encode(t)) == t whenever every piece is known.
- `BPETokenizer`: GPT-2-style byte-level BPE trained with Hugging Face `tokenizers`. It works on
  UTF-8 bytes, so every text round-trips exactly (emoji, scripts never seen in training) and
  there is no unknown token. Decoding maps ids to bytes ourselves (the GPT-2 byte alphabet), so
  the streaming decoder and `decode` agree by construction.

All three save to one JSON file (`save_tokenizer` / `load_tokenizer`); the BPE file embeds the
`tokenizers` JSON. Each also converts to a Hugging Face `tokenizers.Tokenizer` with the same ids
and the same decoding (`to_hugging_face`, written by `save_hugging_face` as the tokenizer.json +
tokenizer_config.json that `transformers.AutoTokenizer` reads): char and word become a WordLevel
model behind a regex Split pre-tokenizer (one character; genlab's word pieces) and a Fuse decoder
(pieces joined with nothing between them). Training reads an iterable of text
chunks, so a corpus larger than memory can be streamed; chunks should be cut at whitespace (as
`genlab.data.text` does) or a word cut in two is counted as two pieces.

Fixed vocabularies that no text trains are looked up by kind in FIXED_KINDS (the music events
of genlab.notes.EventTokenizer, kinds "melody" and "chorale"), imported only when one is read,
so the text tokenizers never import music. Their ids are something other than text: such a
tokenizer is also a `FileTokenizer`, which writes ids as a file of its format (MIDI), and a
`SequenceStatistics`, which measures streams in its own domain (melody statistics).

Whitespace here is Unicode's White_Space property, the same set as `\\s` in the regex that
`tokenizers`' ByteLevel pre-tokenizer uses; Python's own `\\s` adds U+001C..U+001F, which would
make the word pieces (and chunk cuts) disagree with BPE's.
"""

from __future__ import annotations

import codecs
import functools
import importlib
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from genlab.errors import GenlabError, close_matches
from genlab.fileio import atomic_write_text

if TYPE_CHECKING:
    import tokenizers

KINDS = ("char", "word", "bpe")  # the kinds trained on text
# fixed vocabularies that no text trains (music events), kind -> "module:class" with a
# `from_dict`; imported only when such a tokenizer is read, so text never imports music
FIXED_KINDS = {"melody": "genlab.notes:EventTokenizer", "chorale": "genlab.notes:EventTokenizer"}
DEFAULT_VOCAB_SIZE = {"word": 5000, "bpe": 2000}
# word: <unk> plus at least one piece; bpe: the 256 byte tokens (256 = bytes only, no merges).
MIN_VOCAB_SIZE = {"word": 2, "bpe": 256}
MAX_VOCAB_SIZE = 1_000_000  # far above any published LM vocabulary: a larger value is a typo
UNK = "<unk>"
ENDOFTEXT = "<|endoftext|>"  # GPT-2's document separator

WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_WS = f"[{re.escape(WHITESPACE)}]"
# a word (letters, digits, underscore), a whitespace run, or any other single character
_WORD_PIECES = re.compile(rf"\w+|{_WS}+|.", re.DOTALL)


@runtime_checkable
class StreamDecoder(Protocol):
    """Turns ids into text one at a time, as a model generates them."""

    def push(self, token_id: int) -> str:
        """The text completed by this token ("" while a UTF-8 character is still partial)."""
        ...

    def flush(self) -> str:
        """What is still held back at the end (a partial character decodes to U+FFFD)."""
        ...


@runtime_checkable
class Tokenizer(Protocol):
    """What models, data and the server need from any tokenizer."""

    @property
    def kind(self) -> str: ...  # "char" | "word" | "bpe", or a key of FIXED_KINDS

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable description; `tokenizer_from_dict` rebuilds the tokenizer."""
        ...

    def to_hugging_face(self) -> tokenizers.Tokenizer:
        """The same tokenizer in Hugging Face `tokenizers`: the same ids, the same decode."""
        ...

    def stream_decoder(self) -> StreamDecoder: ...


@runtime_checkable
class FileTokenizer(Tokenizer, Protocol):
    """A tokenizer whose ids are something other than text (music events): a file of its
    format is the real output, beside the text `decode` gives."""

    file_suffix: str  # the format's file name suffix, e.g. ".mid"

    def write_file(self, ids: Any, path: Path | str) -> Path:
        """Write `ids` (one stream, or a batch of streams one after another) as a file."""
        ...

    def file_bytes(self, ids: Any) -> bytes:
        """The file `write_file` writes, as bytes (what the server sends)."""
        ...

    def render_audio(self, ids: Any, sample_rate: int) -> Any:
        """The ids heard: float32 mono samples in [-1, 1] at `sample_rate` (np.ndarray)."""
        ...


@runtime_checkable
class SequenceStatistics(Protocol):
    """A tokenizer whose streams have statistics of their own domain (music events: the
    music-theory statistics of their melody), which `genlab evaluate` compares between a
    model's samples and the data."""

    def statistics(self, streams: Any) -> dict[str, float]:
        """Each statistic's mean over token streams (a list of id lists, or a 2-D tensor)."""
        ...


def _check_ids(ids: Iterable[int], vocab_size: int) -> list[int]:
    # ids may come from a user (HTTP, CLI): a negative id would silently index from the end.
    checked = [int(i) for i in ids]
    for i in checked:
        if not 0 <= i < vocab_size:
            raise GenlabError(f"token id {i} is out of range for a vocabulary of {vocab_size}")
    return checked


class PieceStreamDecoder:
    """For tokenizers whose every id is whole text (char, word): push returns the piece."""

    def __init__(self, tokenizer: Tokenizer):
        self._tokenizer = tokenizer

    def push(self, token_id: int) -> str:
        return self._tokenizer.decode([token_id])

    def flush(self) -> str:
        return ""


class ByteStreamDecoder:
    """For byte-level BPE: a token may end inside a multi-byte character; hold those bytes back.

    Uses Python's incremental UTF-8 decoder with errors="replace", which gives exactly what a
    one-shot `bytes.decode("utf-8", "replace")` gives, so the pushes plus `flush` equal `decode`.
    """

    def __init__(self, token_bytes: Sequence[bytes]):
        self._token_bytes = token_bytes
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        (i,) = _check_ids([token_id], len(self._token_bytes))
        return self._decoder.decode(self._token_bytes[i])

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)


class CharTokenizer:
    """One id per character: ids are positions in the sorted, de-duplicated `vocab`."""

    kind = "char"

    def __init__(self, vocab: str):
        if not isinstance(vocab, str) or not vocab:
            raise GenlabError("a character vocabulary needs at least one character")
        self.vocab = "".join(sorted(set(vocab)))
        self._index = {c: i for i, c in enumerate(self.vocab)}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        try:
            return [self._index[c] for c in text]
        except KeyError:
            unknown = "".join(sorted(set(text) - self._index.keys()))
            raise GenlabError(f"characters not in the vocabulary: {unknown!r}") from None

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.vocab[i] for i in _check_ids(ids, self.vocab_size))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "vocab": self.vocab}

    def to_hugging_face(self) -> tokenizers.Tokenizer:
        # No <unk> in the vocabulary: an unknown character is an error there too.
        vocab = {c: i for i, c in enumerate(self.vocab)}
        return _hugging_face_word_level(vocab, _ANY_CHARACTER)

    def stream_decoder(self) -> StreamDecoder:
        return PieceStreamDecoder(self)


class WordTokenizer:
    """Words, punctuation marks and whitespace runs; id 0 is `<unk>`, ids 1.. are `pieces`."""

    kind = "word"

    def __init__(self, pieces: Sequence[str]):
        pieces = list(pieces)
        if not all(isinstance(p, str) and p for p in pieces):
            raise GenlabError("word tokenizer pieces must be non-empty strings")
        if len(set(pieces)) != len(pieces):
            raise GenlabError("word tokenizer pieces must be unique")
        self.pieces = pieces
        self._index = {p: i for i, p in enumerate(pieces, start=1)}

    @classmethod
    def train(cls, chunks: Iterable[str], vocab_size: int) -> WordTokenizer:
        """The vocab_size - 1 most frequent pieces (ties: the smaller string first) and <unk>."""
        counts: Counter[str] = Counter()
        for chunk in chunks:
            counts.update(split_words(chunk))
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls([piece for piece, _ in ranked[: vocab_size - 1]])

    @property
    def vocab_size(self) -> int:
        return len(self.pieces) + 1

    def encode(self, text: str) -> list[int]:
        index = self._index
        return [index.get(piece, 0) for piece in split_words(text)]

    def decode(self, ids: Iterable[int]) -> str:
        pieces = [UNK, *self.pieces]
        return "".join(pieces[i] for i in _check_ids(ids, self.vocab_size))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "pieces": list(self.pieces)}

    def to_hugging_face(self) -> tokenizers.Tokenizer:
        vocab = {UNK: 0, **self._index}
        # _WORD_PIECES: a word, a whitespace run, or any other single character
        word, space = _word_character_class(), _onig_class(map(ord, WHITESPACE))
        return _hugging_face_word_level(vocab, f"{word}+|{space}+|{_ANY_CHARACTER}")

    def stream_decoder(self) -> StreamDecoder:
        return PieceStreamDecoder(self)


def split_words(text: str) -> list[str]:
    """The word tokenizer's pieces: their concatenation is `text`."""
    return _WORD_PIECES.findall(text)


# Hugging Face `tokenizers` regexes are Oniguruma's, where a code point is written \x{HEX}.
_ANY_CHARACTER = r"[\x{0}-\x{10FFFF}]"  # Python's "." with DOTALL


def _onig_class(code_points: Iterable[int]) -> str:
    """An Oniguruma character class of exactly `code_points` (runs written as ranges)."""
    ranges: list[list[int]] = []
    for c in sorted(set(code_points)):
        if ranges and c == ranges[-1][1] + 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    parts = (rf"\x{{{a:X}}}" if a == b else rf"\x{{{a:X}}}-\x{{{b:X}}}" for a, b in ranges)
    return f"[{''.join(parts)}]"


@functools.cache
def _word_character_class() -> str:
    """Python's `\\w` (what `split_words` uses) as explicit code points, about 730 ranges.

    Oniguruma's own `\\w` is another set (it adds combining marks, connector punctuation such as
    U+203F and newer Unicode letters, and lacks circled numbers such as U+2460), which would cut
    words elsewhere.
    """
    everything = "".join(map(chr, range(sys.maxunicode + 1)))
    words = re.finditer(r"\w+", everything)
    return _onig_class(c for m in words for c in range(m.start(), m.end()))


def _hugging_face_word_level(vocab: dict[str, int], pieces: str) -> tokenizers.Tokenizer:
    """A WordLevel model over the pieces the regex `pieces` cuts the text into (every
    character belongs to one piece, so nothing is dropped), decoded by joining the pieces."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(pieces), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    return tokenizer


class BPETokenizer:
    """Byte-level BPE (GPT-2's scheme) held in a Hugging Face `tokenizers.Tokenizer`."""

    kind = "bpe"

    def __init__(self, tokenizer: tokenizers.Tokenizer):
        self._tokenizer = tokenizer
        alphabet = _byte_alphabet()
        vocab = tokenizer.get_vocab()
        token_bytes: list[bytes | None] = [None] * len(vocab)
        for token, i in vocab.items():
            if not 0 <= i < len(vocab) or any(c not in alphabet for c in token):
                raise GenlabError(
                    "not a byte-level BPE tokenizer (tokens outside the byte alphabet)"
                )
            token_bytes[i] = bytes(alphabet[c] for c in token)
        if any(b is None for b in token_bytes):
            raise GenlabError("not a usable BPE tokenizer: its token ids are not 0..N-1")
        self._token_bytes: list[bytes] = [b for b in token_bytes if b is not None]

    @classmethod
    def train(cls, chunks: Iterable[str], vocab_size: int) -> BPETokenizer:
        """Byte-level BPE with at most `vocab_size` tokens: the 256 bytes, then merges."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte, seen or not
            special_tokens=[],
            show_progress=False,
        )
        tokenizer.train_from_iterator(iter(chunks), trainer=trainer)
        return cls(tokenizer)

    @classmethod
    def from_str(cls, json_text: str) -> BPETokenizer:
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_str(json_text)
        except Exception as e:  # the Rust side raises plain Exception with its parser message
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise GenlabError(f"not a valid tokenizers BPE description ({reason})") from e
        return cls(tokenizer)

    @classmethod
    def from_vocab_merges(cls, vocab: Path, merges: Path) -> BPETokenizer:
        """GPT-2's original files (vocab.json, merges.txt), with GPT-2's byte-level pre-tokenizer
        and `<|endoftext|>` as a special token when the vocabulary has it."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        try:
            tokenizer = Tokenizer(models.BPE.from_file(str(vocab), str(merges)))
        except Exception as e:  # the Rust side raises plain Exception with its parser message
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise GenlabError(f"cannot read {vocab} and {merges} as a BPE ({reason})") from e
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        if tokenizer.token_to_id(ENDOFTEXT) is not None:
            tokenizer.add_special_tokens([ENDOFTEXT])
        return cls(tokenizer)

    @property
    def vocab_size(self) -> int:
        return len(self._token_bytes)

    def encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text).ids if text else []

    def decode(self, ids: Iterable[int]) -> str:
        data = b"".join(self._token_bytes[i] for i in _check_ids(ids, self.vocab_size))
        return data.decode("utf-8", errors="replace")  # generated ids may form invalid UTF-8

    def token_bytes(self, token_id: int) -> bytes:
        """The raw bytes of one token (may be part of a UTF-8 character)."""
        (i,) = _check_ids([token_id], self.vocab_size)
        return self._token_bytes[i]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "tokenizer": self._tokenizer.to_str()}

    def to_hugging_face(self) -> tokenizers.Tokenizer:
        from tokenizers import Tokenizer

        return Tokenizer.from_str(self._tokenizer.to_str())  # a copy: ours stays unchanged

    def stream_decoder(self) -> StreamDecoder:
        return ByteStreamDecoder(self._token_bytes)


def _byte_alphabet() -> dict[str, int]:
    """GPT-2's printable stand-in character for each byte (as `ByteLevel.alphabet()`)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    mapping = {chr(b): b for b in printable}
    shifted = 256
    for b in range(256):
        if b not in printable:
            mapping[chr(shifted)] = b
            shifted += 1
    return mapping


def check_kind(kind: object) -> str:
    if not isinstance(kind, str) or kind not in KINDS:
        hint = close_matches(kind, KINDS) if isinstance(kind, str) else ""
        raise GenlabError(f"unknown tokenizer {kind!r}; known: {', '.join(KINDS)}{hint}")
    return kind


def resolve_vocab_size(kind: str, vocab_size: object = None) -> int | None:
    """The vocab_size to train `kind` with: the default when None; None for char (no option)."""
    kind = check_kind(kind)
    if kind == "char":
        if vocab_size is not None:
            raise GenlabError(
                "vocab_size is for the word and bpe tokenizers; the char vocabulary is every "
                "character of the text"
            )
        return None
    if vocab_size is None:
        return DEFAULT_VOCAB_SIZE[kind]
    low = MIN_VOCAB_SIZE[kind]
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise GenlabError(f"vocab_size must be an integer, got {vocab_size!r}")
    if not low <= vocab_size <= MAX_VOCAB_SIZE:
        raise GenlabError(
            f"vocab_size for the {kind} tokenizer must be between {low} and {MAX_VOCAB_SIZE}, "
            f"got {vocab_size}"
        )
    return vocab_size


def train_tokenizer(kind: str, chunks: Iterable[str], vocab_size: int | None = None) -> Tokenizer:
    """A `kind` tokenizer trained on the text pieces `chunks` (streamed once, never joined).

    char: the sorted set of all characters seen (vocab_size must be None). word: the
    vocab_size - 1 most frequent pieces plus <unk> (default 5000, at least 2). bpe: byte-level
    BPE with at most vocab_size tokens (default 2000, at least 256 = the bytes alone). The
    result is deterministic: the same chunks give the same tokenizer.
    """
    size = resolve_vocab_size(kind, vocab_size)
    if kind == "char":
        seen: set[str] = set()
        for chunk in chunks:
            seen.update(chunk)
        if not seen:
            raise GenlabError("no text to train the char tokenizer on")
        return CharTokenizer("".join(seen))
    assert size is not None
    return WordTokenizer.train(chunks, size) if kind == "word" else BPETokenizer.train(chunks, size)


def tokenizer_from_dict(d: object) -> Tokenizer:
    """The tokenizer that `to_dict` described; GenlabError for anything malformed."""
    if not isinstance(d, dict) or "kind" not in d:
        raise GenlabError("not a tokenizer description: expected an object with a 'kind'")
    if isinstance(d["kind"], str) and d["kind"] in FIXED_KINDS:
        module, _, name = FIXED_KINDS[d["kind"]].partition(":")
        return getattr(importlib.import_module(module), name).from_dict(d)
    kind = check_kind(d["kind"])
    field = {"char": "vocab", "word": "pieces", "bpe": "tokenizer"}[kind]
    value = d.get(field)
    expected = list if kind == "word" else str
    if not isinstance(value, expected):
        raise GenlabError(f"{kind} tokenizer description needs {field!r} as a {expected.__name__}")
    if kind == "char":
        return CharTokenizer(value)
    if kind == "word":
        return WordTokenizer(value)
    return BPETokenizer.from_str(value)


def save_tokenizer(tokenizer: Tokenizer, path: Path | str) -> Path:
    """Write `tokenizer` as one JSON file, atomically (temp file, fsync, rename)."""
    return atomic_write_text(Path(path), json.dumps(tokenizer.to_dict(), ensure_ascii=False))


def save_hugging_face(tokenizer: Tokenizer, folder: Path | str) -> None:
    """Write tokenizer.json and tokenizer_config.json into `folder` for `transformers`.

    The config names the generic fast tokenizer: without it, AutoTokenizer picks the tokenizer
    of the model type in config.json (GPT-2's), which replaces the pre-tokenizer with its own.
    No special tokens are declared for char and word, because transformers would then match
    them inside the text ("<unk>" typed by a user), which genlab's tokenizers never do.
    """
    folder = Path(folder)
    hf = tokenizer.to_hugging_face()
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "clean_up_tokenization_spaces": False,  # it would delete the space in "a ." on decode
    }
    if ENDOFTEXT in {t.content for t in hf.get_added_tokens_decoder().values() if t.special}:
        config |= {"bos_token": ENDOFTEXT, "eos_token": ENDOFTEXT}  # GPT-2's own files
    atomic_write_text(folder / "tokenizer.json", hf.to_str())
    atomic_write_text(folder / "tokenizer_config.json", json.dumps(config, indent=2) + "\n")


def open_tokenizer(source: Path | str) -> Tokenizer:
    """A ready-made tokenizer: a genlab tokenizer.json, a Hugging Face `tokenizers` JSON file,
    or a folder holding one: tokenizer.json, genlab_tokenizer.json (what `genlab export` writes
    beside a character or word model) or GPT-2's vocab.json + merges.txt (a Hugging Face model
    folder). Only byte-level BPE is accepted from Hugging Face files."""
    path = Path(source).expanduser()
    if path.is_dir():
        # genlab's own file first: an exported char or word model also has a tokenizer.json,
        # which only transformers reads (genlab reads byte-level BPE ones)
        found = [
            path / n for n in ("genlab_tokenizer.json", "tokenizer.json") if (path / n).is_file()
        ]
        if found:
            path = found[0]
        elif (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
            return BPETokenizer.from_vocab_merges(path / "vocab.json", path / "merges.txt")
        else:
            raise GenlabError(
                f"{path} holds no tokenizer (tokenizer.json, or vocab.json and merges.txt)"
            )
    elif not path.is_file():
        raise GenlabError(f"no tokenizer file or folder at {path}")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        d = None  # load_tokenizer names the problem
    if isinstance(d, dict) and "kind" not in d and "model" in d:  # a `tokenizers` file
        try:
            return BPETokenizer.from_str(json.dumps(d))
        except GenlabError as e:
            raise GenlabError(f"{path}: {e}") from None
    return load_tokenizer(path)


def load_tokenizer(path: Path | str) -> Tokenizer:
    """The tokenizer saved at `path`; GenlabError for a missing, corrupt or unknown file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GenlabError(f"no tokenizer file at {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise GenlabError(f"cannot read the tokenizer file {path} ({e})") from e
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise GenlabError(
            f"{path} is not a tokenizer file (invalid JSON at line {e.lineno}: {e.msg})"
        ) from None
    try:
        return tokenizer_from_dict(d)
    except GenlabError as e:
        raise GenlabError(f"{path}: {e}") from None
