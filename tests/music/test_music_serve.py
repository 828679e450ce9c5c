"""Music over HTTP: a MusicVAE's samples are offered as rendered WAV (with each sample's MIDI)
and as MIDI files, and the files decode back to the sampled notes."""

from __future__ import annotations

import base64
import io

import soundfile
import torch

from genlab.music.musicvae import MusicVAE, MusicVAEConfig
from genlab.notes import EventTokenizer, read_midi
from genlab.serve.encoders import MUSIC_RATE, encode_samples
from genlab.serve.store import describe_model


def served_musicvae():
    torch.manual_seed(0)
    config = MusicVAEConfig(z_size=4, embedding_size=4, encoder_size=8, decoder_size=8)
    model = MusicVAE(config).eval()
    model.tokenizer = EventTokenizer(1)
    return describe_model("mvae", "1", model, "test"), model


def test_a_music_model_offers_wav_and_midi(tmp_path):
    served, model = served_musicvae()
    assert served.formats == ["wav", "midi", "npy", "json"]
    assert served.describe()["kind"] == "music" and served.makes == "music"
    samples = model.sample(2, generator=torch.Generator().manual_seed(1), temperature=0.5)
    out = encode_samples(samples.float(), "wav", served.sample_info)
    assert out["sample_rate"] == MUSIC_RATE and len(out["audio"]) == len(out["midi"]) == 2
    for i, (wav, midi) in enumerate(zip(out["audio"], out["midi"], strict=True)):
        audio, rate = soundfile.read(io.BytesIO(base64.b64decode(wav)))
        assert rate == MUSIC_RATE and abs(len(audio) / rate - out["seconds"][i]) < 1e-3
        path = tmp_path / f"{i}.mid"
        path.write_bytes(base64.b64decode(midi))
        assert read_midi(path) == model.tokenizer.to_sequence(samples[i].tolist())
    midi = encode_samples(samples.float(), "midi", served.sample_info)
    assert midi["mime"] == "audio/midi" and midi["midi"] == out["midi"]


def test_a_model_without_music_gets_no_midi():
    served, model = served_musicvae()
    model.tokenizer = None
    assert "midi" not in served.formats and "wav" not in served.formats
    assert served.makes == "arrays"
