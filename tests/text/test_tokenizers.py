"""Tokenizers: exact round trips, unknown input, save/load, streaming decode, determinism."""

from __future__ import annotations

import json
import random

import pytest

from genlab.errors import GenlabError
from genlab.tokenizers import (
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    WordTokenizer,
    load_tokenizer,
    open_tokenizer,
    save_hugging_face,
    save_tokenizer,
    split_words,
    tokenizer_from_dict,
    train_tokenizer,
)

LINES = [
    "First Citizen: Before we proceed any further, hear me speak.",
    "All: Speak, speak.",
    "First Citizen: You are all resolved rather to die than to famish?",
    "All: Resolved. resolved.",
    "First Citizen: First, you know Caius Marcius is chief enemy to the people.",
]
CORPUS = "\n".join(LINES * 8) + "\n"
UNSEEN = "Héllo wörld 🎉👩‍🔬 日本語 — naïve café\tend  \n"


def chunks(text: str, size: int = 97) -> list[str]:
    """Pieces of `text`, cut at spaces as the data pipeline does."""
    out, start = [], 0
    while start < len(text):
        stop = text.find(" ", start + size)
        stop = len(text) if stop < 0 else stop
        out.append(text[start:stop])
        start = stop
    return out


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    tok = train_tokenizer("bpe", chunks(CORPUS), vocab_size=300)
    assert isinstance(tok, BPETokenizer)
    return tok


@pytest.fixture(scope="module")
def word() -> WordTokenizer:
    tok = train_tokenizer("word", chunks(CORPUS), vocab_size=30)
    assert isinstance(tok, WordTokenizer)
    return tok


def test_char_round_trip_and_unknown_characters():
    tok = train_tokenizer("char", iter(["hello ", "world"]))
    assert isinstance(tok, CharTokenizer) and isinstance(tok, Tokenizer)
    assert tok.kind == "char" and tok.vocab == " dehlorw" and tok.vocab_size == 8
    assert tok.encode("hello") == [3, 2, 4, 4, 5] and tok.decode(tok.encode("low")) == "low"
    assert tok.encode("") == [] and tok.decode([]) == ""
    with pytest.raises(GenlabError, match=r"characters not in the vocabulary: 'é€'"):
        tok.encode("hé€llo€")
    with pytest.raises(GenlabError, match="out of range"):
        tok.decode([8])
    with pytest.raises(GenlabError, match="out of range"):
        tok.decode([-1])  # would silently be the last character
    assert CharTokenizer("cba").vocab == "abc"


def test_word_round_trip_and_unknown_pieces(word):
    text = "First Citizen: speak, speak.\n"
    assert split_words("Hi,  you.\n\n") == ["Hi", ",", "  ", "you", ".", "\n\n"]
    assert word.kind == "word" and word.vocab_size == 30
    assert word.decode(word.encode(text)) == text  # every piece known: exact
    ids = word.encode("First Zebra: speak!")
    assert ids.count(0) == 2  # "Zebra" and "!" are unknown
    assert word.decode(ids) == "First <unk>: speak<unk>"
    assert word.encode("") == []
    assert "".join(split_words(UNSEEN)) == UNSEEN


def test_word_vocabulary_is_the_most_frequent_pieces_with_ties_broken_by_the_string():
    tok = train_tokenizer("word", ["b a c a b d"], vocab_size=4)
    # " " x5, "a" x2, "b" x2, then c/d once each: c wins the tie for the last place
    assert tok.to_dict()["pieces"] == [" ", "a", "b"]
    assert train_tokenizer("word", ["b a c a b d"], vocab_size=5).to_dict()["pieces"][-1] == "c"


def test_bpe_round_trips_any_text(bpe):
    assert bpe.kind == "bpe" and bpe.vocab_size == 300
    assert bpe.decode(bpe.encode(CORPUS)) == CORPUS
    assert len(bpe.encode(CORPUS)) < 0.6 * len(CORPUS.encode())  # merges were learned
    for text in [UNSEEN, "", " ", "\x00\x1c\r\n", "🎉" * 3, LINES[0][:-1]]:
        assert bpe.decode(bpe.encode(text)) == text
    assert bpe.encode("") == []
    # our byte table decodes exactly as the tokenizers library does
    library = bpe._tokenizer  # the wrapped Hugging Face tokenizer
    assert library.decode(bpe.encode(UNSEEN)) == UNSEEN


def test_bpe_stream_decoder_holds_back_partial_characters(bpe):
    ids = bpe.encode(UNSEEN)
    split = [i for i in ids if _is_partial(bpe.token_bytes(i))]
    assert split, "the emoji and CJK bytes should come as tokens that cut characters"
    decoder = bpe.stream_decoder()
    pushed = [decoder.push(i) for i in ids]
    assert "".join(pushed) + decoder.flush() == bpe.decode(ids) == UNSEEN
    assert "" in pushed and all("\ufffd" not in piece for piece in pushed)
    # arbitrary ids (what a model may generate) can be invalid UTF-8: still the same as decode
    rng = random.Random(0)
    for _ in range(200):
        ids = [rng.randrange(bpe.vocab_size) for _ in range(rng.randrange(8))]
        ids += [rng.randrange(128, 256) for _ in range(rng.randrange(3))]  # bare high bytes
        decoder = bpe.stream_decoder()
        streamed = "".join(decoder.push(i) for i in ids) + decoder.flush()
        assert streamed == bpe.decode(ids)


def _is_partial(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@pytest.mark.parametrize("kind", ["char", "word"])
def test_piece_stream_decoder(kind, word):
    tok = word if kind == "word" else train_tokenizer("char", [CORPUS])
    ids = tok.encode("First Citizen: speak.")
    decoder = tok.stream_decoder()
    assert [decoder.push(i) for i in ids] == [tok.decode([i]) for i in ids]
    assert decoder.flush() == ""


def test_save_and_load_give_identical_encodings(tmp_path, bpe, word):
    char = train_tokenizer("char", [CORPUS])
    for tok in (char, word, bpe):
        path = save_tokenizer(tok, tmp_path / f"{tok.kind}.json")
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp
        loaded = load_tokenizer(path)
        assert type(loaded) is type(tok) and loaded.to_dict() == tok.to_dict()
        assert loaded.encode(LINES[2]) == tok.encode(LINES[2])
        assert tokenizer_from_dict(json.loads(json.dumps(tok.to_dict()))).to_dict() == tok.to_dict()


# Where Python's \w (genlab's word pieces) and Oniguruma's (Hugging Face's regexes) differ:
# a combining accent, connector punctuation, numbers; plus odd spaces, emoji and "<unk>" typed.
TRICKY = "Cafe\u0301 x\u203fy 2²½① Ⅷ snake_case\x1c!\u3000\x85日本 🎉👩‍🔬 <unk> it's\r\n"


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_transformers_reads_the_same_ids_and_text(kind, tmp_path):
    """What `genlab export` writes beside a text model: AutoTokenizer gets genlab's ids, and
    decodes them as genlab does (char and bpe: the text itself; word: <unk> for unknowns)."""
    transformers = pytest.importorskip("transformers")
    vocab_size = {"char": None, "word": 200, "bpe": 400}[kind]
    tok = train_tokenizer(kind, chunks(CORPUS + TRICKY * 2), vocab_size=vocab_size)
    text = "  " + LINES[2] + TRICKY + LINES[0] + "\n\n"  # outer whitespace kept too
    if kind != "char":
        text += " Zyzzyva unseen"  # word: unknown pieces; bpe: new merges of known bytes
    save_hugging_face(tok, tmp_path)
    hf = transformers.AutoTokenizer.from_pretrained(tmp_path)
    ids = tok.encode(text)
    assert hf(text)["input_ids"] == hf.encode(text) == ids
    assert len(hf) == tok.vocab_size and hf.decode(ids) == tok.decode(ids)
    assert (hf.decode(ids) == text) is (kind != "word")
    if kind == "word":
        assert tok.decode(ids).startswith("<unk>") and tok.decode(ids).endswith("<unk> <unk>")
        cafe = tok.encode("Cafe\u0301")  # Python's \w leaves the accent out of the word
        assert hf.encode("Cafe\u0301") == cafe and len(cafe) == 2 and 0 not in cafe
    if kind == "char":  # an unknown character is an error on both sides, never dropped
        with pytest.raises(GenlabError):
            tok.encode("Zyzzyva")
        with pytest.raises(Exception, match="UNK"):
            hf.encode("Zyzzyva")
    # genlab reads such a folder back through its own file when `genlab export` put one there
    save_tokenizer(tok, tmp_path / "genlab_tokenizer.json")
    assert open_tokenizer(tmp_path).to_dict() == tok.to_dict()


def test_bad_tokenizer_files_are_clear_errors(tmp_path):
    with pytest.raises(GenlabError, match="no tokenizer file at"):
        load_tokenizer(tmp_path / "missing.json")
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"kind": "char", "vocab": "ab"')
    with pytest.raises(GenlabError, match=r"not a tokenizer file \(invalid JSON at line 1"):
        load_tokenizer(corrupt)
    cases = {
        '{"kind": "sentencepiece"}': "unknown tokenizer 'sentencepiece'",
        '{"vocab": "ab"}': "expected an object with a 'kind'",
        '{"kind": "word", "pieces": "ab"}': "needs 'pieces' as a list",
        '{"kind": "word", "pieces": ["a", "a"]}': "must be unique",
        '{"kind": "bpe", "tokenizer": "{}"}': "not a valid tokenizers BPE description",
        '{"kind": "char", "vocab": ""}': "at least one character",
    }
    for body, message in cases.items():
        corrupt.write_text(body)
        with pytest.raises(GenlabError, match=message):
            load_tokenizer(corrupt)


def test_training_is_deterministic(bpe, word):
    again = train_tokenizer("bpe", chunks(CORPUS), vocab_size=300)
    assert again.to_dict() == bpe.to_dict() and again.encode(UNSEEN) == bpe.encode(UNSEEN)
    # how the corpus is cut (at spaces) does not change what is learned
    one_piece = train_tokenizer("bpe", [CORPUS], vocab_size=300)
    assert one_piece.to_dict() == bpe.to_dict()
    assert train_tokenizer("word", [CORPUS], vocab_size=30).to_dict() == word.to_dict()


def test_vocab_size_is_checked():
    with pytest.raises(GenlabError, match="between 256 and"):
        train_tokenizer("bpe", [CORPUS], vocab_size=255)
    with pytest.raises(GenlabError, match="between 2 and"):
        train_tokenizer("word", [CORPUS], vocab_size=1)
    with pytest.raises(GenlabError, match="must be an integer"):
        train_tokenizer("word", [CORPUS], vocab_size=True)
    with pytest.raises(GenlabError, match="vocab_size is for the word and bpe"):
        train_tokenizer("char", [CORPUS], vocab_size=100)
    with pytest.raises(GenlabError, match=r"unknown tokenizer 'bep'.*did you mean: bpe"):
        train_tokenizer("bep", [CORPUS])
    with pytest.raises(GenlabError, match="no text"):
        train_tokenizer("char", [])
    bytes_only = train_tokenizer("bpe", ["abc abc"], vocab_size=256)
    assert bytes_only.vocab_size == 256 and bytes_only.decode(bytes_only.encode(UNSEEN)) == UNSEEN
