"""Audio over HTTP, on both apps: an AudioModel (tests/plugin/chirp.py) is listed as "audio" with
its sample rate, answers base64 WAVs in JSON (format "wav"), and one sample as the WAV file
itself to a request with `Accept: audio/wav`; other models and other requests get a one-line
406 or 422."""

from __future__ import annotations

import base64
import io

import pytest
import soundfile
import torch
from test_modalities import Tones
from test_service import make_client

from genlab.serve.service import Service, wants_wav
from genlab.serve.store import describe_model
from genlab.sound import wav_bytes
from plugin.chirp import Chirp

pytest.importorskip("fastapi")
pytest.importorskip("flask")

WAV = {"Accept": "audio/wav"}
URL = "/v1/models/chirp/generate"


@pytest.fixture(scope="module")
def service():
    svc = Service()
    svc.add(describe_model("chirp", "v1", Chirp().eval(), "memory", registry_name="chirp"))
    svc.add(describe_model("tones", "v1", Tones().eval(), "memory", registry_name="tones"))
    svc.mark_ready()
    yield svc
    svc.close()


@pytest.fixture(params=["fastapi", "flask"])
def client(request, service):
    return make_client(request.param, service)


def expected(n: int, seed: int) -> torch.Tensor:
    """What the server's model draws for n and seed: (n, 1, 256)."""
    with torch.inference_mode():
        return Chirp().sample(n, generator=torch.Generator().manual_seed(seed))


def test_an_audio_model_is_listed_with_its_rate(client):
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    chirp, tones = models["chirp"], models["tones"]
    assert chirp["kind"] == "audio" and chirp["sample_rate"] == 8000
    assert chirp["formats"] == ["wav", "npy", "json"] and chirp["shape"] == [1, 256]
    assert tones["formats"] == ["npy", "json"] and tones["sample_rate"] is None


def test_json_answers_carry_one_wav_per_sample(client):
    r = client.post(URL, json={"n": 2, "seed": 3, "format": "wav"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["kind"], out["mime"], out["sample_rate"]) == ("audio", "audio/wav", 8000)
    assert out["shape"] == [1, 256] and len(out["audio"]) == 2
    samples = expected(2, 3)
    for wav, sample in zip(out["audio"], samples, strict=True):
        data = base64.b64decode(wav)
        assert data == wav_bytes(sample, 8000)
        decoded, rate = soundfile.read(io.BytesIO(data), dtype="float64")
        assert rate == 8000 and decoded.shape == (256,)
        scaled = torch.from_numpy(decoded * 32768 / 32767)  # 16-bit: within half a step
        assert torch.allclose(scaled, sample[0].double(), atol=0.5 / 32767 + 1e-9)


def test_accept_audio_wav_answers_the_file_itself(client):
    r = client.post(URL, json={"seed": 5}, headers=WAV)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/wav"
    assert r.content == wav_bytes(expected(1, 5)[0], 8000)
    assert r.headers["x-genlab-seed"] == "5" and r.headers["x-genlab-sample-rate"] == "8000"
    again = client.post(URL, json={}, headers={"Accept": "audio/x-wav, application/json;q=0.5"})
    assert again.status_code == 200 and again.headers["content-type"] == "audio/wav"
    seed = int(again.headers["x-genlab-seed"])  # a random seed, said so it can be replayed
    assert again.content == wav_bytes(expected(1, seed)[0], 8000)


@pytest.mark.parametrize(
    "url, body, headers, status, message",
    [
        (URL, {"n": 2}, WAV, 422, "n: an audio/wav answer holds one sample"),
        (URL, {"format": "png"}, WAV, 422, "format: 'png' does not go with Accept: audio/wav"),
        (URL, {"stream": True}, WAV, 422, "stream: Extra inputs are not permitted"),
        (URL, {"n": 0}, WAV, 422, "n: Input should be greater than or equal to 1"),
        ("/v1/models/tones/generate", {}, WAV, 406, "tones makes arrays, not audio/wav"),
        ("/v1/models/nope/generate", {}, WAV, 404, "no model named 'nope'"),
        (URL, {}, {}, 422, "format: chirp makes audio, not images: wav or npy or json"),
        ("/v1/models/tones/generate", {"format": "wav"}, {}, 422, "tones makes arrays, not audio"),
    ],
)
def test_what_cannot_be_answered_is_one_line(client, url, body, headers, status, message):
    r = client.post(url, json=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert message in error and "\n" not in error


@pytest.mark.parametrize(
    "accept, wav",
    [
        (None, False),
        ("*/*", False),
        ("application/json", False),
        ("audio/wav", True),
        ("audio/wave; q=0.9, application/json; q=0.5", True),
        ("application/json, audio/wav;q=0.5", False),
        ("audio/wav;q=0", False),
        ("AUDIO/X-WAV", True),
        ("audio/wav;q=bad", False),
    ],
)
def test_which_accept_headers_ask_for_a_wav(accept, wav):
    assert wants_wav(accept) is wav
