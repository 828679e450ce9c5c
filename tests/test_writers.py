import pytest
import torch
from PIL import Image

from genlab.errors import GenlabError
from genlab.tokenizers import CharTokenizer
from genlab.writers import TEXT_SEPARATOR, WRITERS, write_samples, writer_for


def test_samples_figure_by_kind(tmp_path):
    """The writer is chosen by the samples' kind, never by their rank: token ids (B, T) have
    the rank of 2-D points, and a kind with no writer is an error, not a missing file."""
    assert write_samples(torch.rand(4, 1, 6, 6), tmp_path / "a.png", kind="image")
    assert write_samples(torch.randn(50, 2), tmp_path / "b.png", kind="vector")
    with pytest.raises(GenlabError, match="no sample writer for 'audio'"):
        write_samples(torch.randint(0, 5, (3, 7)), tmp_path / "c.png", kind="audio")
    assert (tmp_path / "a.png").is_file() and (tmp_path / "b.png").is_file()
    assert not (tmp_path / "c.png").exists()
    with Image.open(tmp_path / "a.png") as png:
        assert png.mode == "L"
    with pytest.raises(ValueError, match="scatter"):
        write_samples(torch.randn(5, 1), tmp_path / "d.png", kind="vector")


class _Speaker:
    """Just enough of a TokenGenerator for the text writer: a tokenizer."""

    block_size = 4

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def step(self, ids, cache=None):
        raise NotImplementedError


def test_text_samples_are_decoded_with_the_model_tokenizer(tmp_path):
    tokenizer = CharTokenizer("abc\n")
    ids = torch.tensor([tokenizer.encode("abca"), tokenizer.encode("cab\n")])
    assert writer_for("text").suffix == ".txt"
    path = write_samples(ids, tmp_path / "s.txt", kind="text", model=_Speaker(tokenizer))
    assert path.read_text() == "abca" + TEXT_SEPARATOR + "cab\n" + "\n"
    plain = write_samples(ids[:1], tmp_path / "ids.txt", kind="text")  # no tokenizer: numbers
    assert plain.read_text() == " ".join(map(str, ids[0].tolist())) + "\n"


def test_every_data_kind_has_a_writer():
    from genlab.data.base import MODALITIES

    assert set(MODALITIES) <= set(WRITERS)
