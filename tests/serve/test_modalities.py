"""The server follows the contract, not a list of models: a model of a modality it has no code
for (seismograms here), with sample options of its own, is served, validated and described once
it is registered, with no edit to genlab.serve."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
import torch
from serve_runs import run
from test_service import make_client
from torch import nn

from genlab import registry
from genlab.contract import option
from genlab.serve.schemas import openapi_request_schema, sample_request
from genlab.serve.service import Service
from genlab.serve.store import describe_model

pytest.importorskip("fastapi")
pytest.importorskip("flask")

RATE, LENGTH = 8000, 64


@dataclasses.dataclass(frozen=True)
class ToneOptions:
    pitch: float = option(440.0, help="the tone's frequency in Hz", ge=20, le=4000)
    wave: str = option("sine", help="the tone's shape", choices=("sine", "square"))
    slow: bool = option(False, help="a CLI-only option", serve=False)


class Tones(nn.Module):
    """A toy seismograph: n tones of 64 samples at 8 kHz with random phases, of a data kind
    ("seismic") that genlab has no code for."""

    data_kinds = ("seismic",)
    SampleOptions = ToneOptions

    @dataclasses.dataclass
    class Config:
        data_shape: tuple[int, ...] = (1, LENGTH)

    def __init__(self, config: Any = None):
        super().__init__()
        self.config = config or self.Config()
        self.gain = nn.Parameter(torch.ones(()))

    def loss(self, batch: Any) -> dict[str, torch.Tensor]:
        return {"loss": self.gain * 0}

    def sample(
        self, n: int, *, generator: Any = None, pitch: float = 440.0, wave: str = "sine"
    ) -> torch.Tensor:
        phase = torch.rand(n, 1, 1, generator=generator) * 2 * math.pi
        t = torch.arange(LENGTH) / RATE
        tone = torch.sin(2 * math.pi * pitch * t + phase) * self.gain
        return tone.sign() if wave == "square" else tone


@pytest.fixture
def tones(monkeypatch):
    """A service holding a registered Tones model (the request schema made afresh with it)."""
    description = "Tones: a toy seismograph, a modality genlab.serve has no code for"
    monkeypatch.setitem(registry.MODELS, "tones", (f"{__name__}:Tones", description))
    sample_request.cache_clear()
    service = Service()
    service.add(describe_model("tones", "v1", Tones().eval(), "memory", registry_name="tones"))
    service.mark_ready()
    yield service
    service.close()
    monkeypatch.undo()
    sample_request.cache_clear()


def test_a_new_modality_is_described_from_the_contract(tones):
    (listed,) = tones.describe()["models"]
    assert listed["kind"] == "samples" and listed["model"] == "tones"
    assert listed["description"].startswith("Tones: a toy seismograph")
    assert listed["conditions"] == ["pitch", "wave"]  # not the CLI-only option
    assert listed["formats"] == ["npy", "json"]  # no encoder writes seismograms as PNG or WAV
    pitch, wave = listed["options"]
    assert (pitch["type"], pitch["ge"], pitch["le"], pitch["default"]) == ("number", 20, 4000, 440)
    assert wave["choices"] == ["sine", "square"] and wave["type"] == "string"
    body = openapi_request_schema()["oneOf"][0]["properties"]
    assert "pitch" in body and body["wave"]["anyOf"][0]["enum"] == ["sine", "square"]


@pytest.mark.parametrize("kind", ["fastapi", "flask"])
def test_its_options_reach_sample_and_are_checked(tones, kind):
    client = make_client(kind, tones)
    url = "/v1/models/tones/generate"
    body = {"n": 3, "seed": 5, "pitch": 1000, "format": "json"}
    r = client.post(url, json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["kind"] == "samples" and out["shape"] == [3, 1, LENGTH]
    expected = Tones().sample(3, generator=torch.Generator().manual_seed(5), pitch=1000)
    assert torch.allclose(torch.tensor(out["samples"]), expected, atol=1e-6)
    square = client.post(url, json={**body, "wave": "square"}).json()["samples"]
    assert {abs(v) for row in square for v in row[0]} == {1.0}
    bad = [
        ({"pitch": 5}, "pitch"),
        ({"pitch": "high"}, "pitch"),
        ({"wave": "saw"}, "wave"),
        ({"slow": True}, "slow: Extra inputs"),
        ({"label": 1}, "tones does not take label (it takes: pitch, wave)"),
        ({"format": "png"}, "format: tones makes arrays, not images: npy or json"),
    ]
    for fields, message in bad:
        r = client.post(url, json={"format": "json", **fields})
        assert r.status_code == 422 and message in r.json()["error"], (fields, r.text)


def test_a_variant_is_described_by_its_registered_name():
    """An lstm run is the class RNN: /v1/models says "lstm" (config.json's model) and shows
    the registry's line for lstm."""
    service = Service([str(run("lstm"))])
    try:
        (listed,) = service.describe()["models"]
        assert listed["model"] == "lstm" and listed["kind"] == "text"
        assert listed["description"].startswith("LSTM language model")
        text = service.run(None, None, {"prompt": "KING", "max_new_tokens": 5, "seed": 0})
        assert text["kind"] == "text" and isinstance(text["text"], str)
    finally:
        service.close()
