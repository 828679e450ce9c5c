import pytest
import torch
from PIL import Image

from genlab.errors import GenlabError
from genlab.tokenizers import CharTokenizer
from genlab.writers import AUDIO_GAP_S, TEXT_SEPARATOR, WRITERS, write_samples, writer_for


def test_samples_figure_by_kind(tmp_path):
    """The writer is chosen by the samples' kind, never by their rank: token ids (B, T) have
    the rank of 2-D points, and a kind with no writer is an error, not a missing file."""
    assert write_samples(torch.rand(4, 1, 6, 6), tmp_path / "a.png", kind="image")
    assert write_samples(torch.randn(50, 2), tmp_path / "b.png", kind="vector")
    with pytest.raises(GenlabError, match="no sample writer for 'smell'"):
        write_samples(torch.randint(0, 5, (3, 7)), tmp_path / "c.png", kind="smell")
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


def test_audio_samples_are_one_wav_at_the_model_rate(tmp_path):
    """(B, 1, T) amplitudes -> one 16-bit mono WAV at the model's sample rate: the samples in
    order, AUDIO_GAP_S of silence between them, each value within half a 16-bit step."""
    import soundfile

    from plugin.chirp import Chirp, ChirpConfig

    model = Chirp(ChirpConfig(sample_rate=16000))
    samples = model.sample(3, generator=torch.Generator().manual_seed(0)).detach()  # (3, 1, 256)
    assert writer_for("audio").suffix == ".wav"
    path = write_samples(samples, tmp_path / "s.wav", kind="audio", model=model)
    data, rate = soundfile.read(path, dtype="float64")
    info = soundfile.info(path)
    assert (rate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    gap = round(AUDIO_GAP_S * 16000)
    assert data.shape == (3 * 256 + 2 * gap,)
    for i in range(3):
        start = i * (256 + gap)
        piece = torch.from_numpy(data[start : start + 256] * 32768 / 32767)
        assert torch.allclose(piece, samples[i, 0].double(), atol=0.5 / 32767 + 1e-9)
        if i < 2:
            assert not data[start + 256 : start + 256 + gap].any()  # silence between
    with pytest.raises(ValueError, match=r"\(B, 1, T\)"):
        write_samples(samples[:, 0], tmp_path / "flat.wav", kind="audio", model=model)
    with pytest.raises(ValueError, match="sample rate"):
        write_samples(samples, tmp_path / "no-rate.wav", kind="audio", model=None)
