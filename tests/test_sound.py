"""genlab.sound: mu-law companding, the quantizers, reading/resampling/writing audio, figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile
import torch

from genlab import sound
from genlab.errors import GenlabError
from genlab.sound import LINEAR_16, MU_LAW, Quantizer


def sine(frequency: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def peak_frequency(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


# --- mu-law -----------------------------------------------------------------------------------
def test_mu_law_closed_form_and_round_trip():
    x = torch.tensor([-1.0, -0.5, 0.0, 0.001, 0.5, 1.0], dtype=torch.float64)
    expected = [math.copysign(math.log(1 + 255 * abs(v)) / math.log(256), v) for v in x.tolist()]
    assert torch.allclose(sound.mu_law_compress(x), torch.tensor(expected, dtype=torch.float64))
    assert sound.mu_law_compress(x)[[0, 2, 5]].tolist() == [-1.0, 0.0, 1.0]
    y = torch.linspace(-1, 1, 1001, dtype=torch.float64)
    assert torch.allclose(sound.mu_law_compress(sound.mu_law_expand(y)), y, atol=1e-12)
    assert torch.allclose(sound.mu_law_expand(sound.mu_law_compress(y)), y, atol=1e-12)
    # another mu: F(0.5) = ln(1 + 7.5) / ln(16) for mu = 15
    half = sound.mu_law_compress(torch.tensor(0.5, dtype=torch.float64), mu=15)
    assert half.item() == pytest.approx(math.log(8.5) / math.log(16))


def test_mu_law_codes_match_wavenets_formula():
    """code = floor((F(x) + 1) / 2 * 255 + 0.5), away from the bin boundaries."""
    x = torch.rand(20000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    position = (sound.mu_law_compress(x) + 1) / 2 * 255 + 0.5
    clear = (position - position.floor() - 0.5).abs() < 0.49  # not within 1% of a boundary
    assert torch.equal(MU_LAW.encode(x)[clear], position.floor().long()[clear])
    assert MU_LAW.encode(torch.tensor([-1.0, 0.0, 1.0, 7.0, -7.0])).tolist() == [
        0,
        128,
        255,
        255,
        0,
    ]
    assert MU_LAW.decode(torch.tensor([0, 255])).tolist() == [-1.0, 1.0]


@pytest.mark.parametrize("quantizer", [MU_LAW, LINEAR_16, Quantizer("mu-law", 16)])
def test_edges_and_encode_agree(quantizer):
    levels = quantizer.levels
    edges = quantizer.edges()
    assert edges.dtype == torch.float64 and edges.shape == (levels + 1,)
    assert edges[0] == -1 and edges[-1] == 1 and bool((edges[1:] > edges[:-1]).all())
    k = torch.arange(levels)
    assert torch.equal(quantizer.encode(edges[:-1]), k)  # a bin's lower edge belongs to it
    assert torch.equal(quantizer.encode(edges[1:-1] - 1e-12), k[:-1])  # just below: the bin before
    x = torch.rand(50000, generator=torch.Generator().manual_seed(1)) * 2 - 1
    codes = quantizer.encode(x)
    assert codes.dtype == torch.int64
    x64 = x.double()
    assert bool(((edges[codes] <= x64) & (x64 < edges[codes + 1])).all())
    values = quantizer.decode(k).double()  # each value lies in its own bin
    assert torch.equal(quantizer.encode(values), k)
    assert bool(((edges[:-1] <= values) & (values <= edges[1:])).all())


def test_linear_16_bins():
    k = torch.tensor([0, 32767, 32768, 65535])
    assert torch.allclose(LINEAR_16.decode(k).double(), 2 * k.double() / 65535 - 1, atol=1e-7)
    x = torch.rand(1000, generator=torch.Generator().manual_seed(2)) * 2 - 1
    error = (LINEAR_16.decode(LINEAR_16.encode(x)) - x).abs()
    assert error.max() <= 1 / 65535 + 1e-7  # at most half a bin (2 / 65535 wide)
    assert LINEAR_16.encode(torch.tensor(0.0)).item() == 32768


# --- reading ----------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["wav", "flac", "ogg"])
def test_read_audio_formats_and_stereo_to_mono(tmp_path, suffix):
    left, right = sine(440, 8000, 0.5), sine(440, 8000, 0.5, amplitude=0.1)
    path = tmp_path / f"a.{suffix}"
    soundfile.write(path, np.stack([left, right], axis=1), 8000)
    audio, rate = sound.read_audio(path)
    assert rate == 8000 and audio.dtype == np.float32 and audio.shape == (2, 4000)
    tolerance = 0.05 if suffix == "ogg" else 1e-3  # Vorbis is lossy
    assert np.abs(audio[0] - left).max() < tolerance
    mono = sound.to_mono(audio)
    assert mono.shape == (4000,)
    assert np.abs(mono - (left + right) / 2).max() < tolerance
    from_bytes, _ = sound.read_audio(path.read_bytes())
    assert np.array_equal(from_bytes, audio)


def test_resample_keeps_a_sines_frequency(tmp_path):
    path = tmp_path / "cd.wav"
    soundfile.write(path, sine(1000, 44100, 1.0), 44100)
    audio = sound.load_audio(path, 8000)
    assert audio.shape == (8000,) and audio.dtype == np.float32
    assert peak_frequency(audio, 8000) == pytest.approx(1000, abs=2)
    assert np.abs(audio).max() == pytest.approx(0.5, abs=0.02)
    same = sound.resample(audio, 8000, 8000)
    assert np.array_equal(same, audio) and same is not audio
    up = sound.resample(audio, 8000, 16000)
    assert up.shape == (16000,) and peak_frequency(up, 16000) == pytest.approx(1000, abs=2)


def _zero_length_wav() -> bytes:
    return sound.wav_bytes(np.zeros(0, dtype=np.float32), 8000)


@pytest.mark.parametrize(
    "content, why",
    [
        (None, "no such file"),
        (b"", "empty file"),
        (b"just some text, not sound\n" * 20, "not a readable"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not a readable"),  # a cut-off header
        (_zero_length_wav(), "zero length"),
    ],
)
def test_bad_audio_files_are_one_line_errors(tmp_path, content, why):
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(GenlabError) as caught:
        sound.read_audio(path, name="my-file")
    message = str(caught.value)
    assert message.startswith("my-file: ") and why in message and "\n" not in message
    if content:
        with pytest.raises(GenlabError, match=why):
            sound.read_audio(content)


# --- writing ----------------------------------------------------------------------------------
def test_wav_round_trip_16_bit(tmp_path):
    x = np.concatenate([sine(300, 8000, 0.25), [1.5, -1.5, 1.0, -1.0]]).astype(np.float32)
    path = sound.write_wav(tmp_path / "deep" / "out.wav", torch.from_numpy(x)[None], 8000)
    assert path.is_file()
    info = soundfile.info(path)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (
        8000,
        1,
        "PCM_16",
        len(x),
    )
    audio, rate = sound.read_audio(path)
    assert rate == 8000
    expected = np.clip(x, -1, 1)
    assert np.abs(audio[0] - expected).max() <= 1.5 / 32767
    pcm, _ = soundfile.read(path, dtype="int16")
    assert pcm[-4:].tolist() == [32767, -32767, 32767, -32767]  # clipped, then x 32767
    assert sound.wav_bytes(x, 8000) == path.read_bytes()
    with pytest.raises(ValueError, match="expected"):
        sound.wav_bytes(np.zeros((2, 10)), 8000)


# --- figures ----------------------------------------------------------------------------------
def test_stft_finds_a_tones_frequency():
    magnitude, window, hop = sound.stft_magnitude(sine(1500, 8000, 0.5), 8000)
    assert window == 256 and hop == 64 and magnitude.shape[1] == window // 2 + 1
    assert np.argmax(magnitude.mean(axis=0)) * 8000 / window == pytest.approx(1500, abs=8000 / 256)


def test_figures_are_written(tmp_path):
    samples = [sine(440, 8000, 0.5), sine(880, 8000, 0.02)]  # the second shorter than a window
    wave = sound.waveform_figure(samples, 8000, tmp_path / "w" / "wave.png", titles=["a", "b"])
    spec = sound.spectrogram_figure(samples, 8000, tmp_path / "spec.png")
    for path in (wave, spec):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no samples"):
        sound.waveform_figure([], 8000, tmp_path / "none.png")
