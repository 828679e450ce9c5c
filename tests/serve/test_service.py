"""The service over HTTP: the same routes, statuses and errors from the FastAPI and Flask apps."""

from __future__ import annotations

import base64
import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image
from serve_runs import run

from genlab.errors import GenlabError
from genlab.serve.schemas import Limits
from genlab.serve.service import Service

pytest.importorskip("fastapi")
pytest.importorskip("flask")

MODELS = ("dcgan", "cgan", "pixelcnn", "realnvp", "gpt")
KEY = "s3cret-key"


@pytest.fixture(scope="module")
def service():
    svc = Service([str(run(name)) for name in MODELS], limits=Limits(max_n=16, max_tokens=64))
    yield svc
    svc.close()


class FlaskClient:
    """Flask's test client with the httpx-style calls the tests use."""

    def __init__(self, app):
        self._client = app.test_client()

    def get(self, url, headers=None):
        return _Response(self._client.get(url, headers=headers))

    def post(self, url, json=None, content=None, headers=None):
        if json is not None:
            return _Response(self._client.post(url, json=json, headers=headers))
        return _Response(
            self._client.post(url, data=content, headers=headers, content_type="application/json")
        )


class _Response:
    def __init__(self, response):
        self.status_code = response.status_code
        self.headers = response.headers
        self.content = response.get_data()
        self.text = self.content.decode(errors="replace")  # a WAV answer is not text

    def json(self):
        return json.loads(self.content)


def make_client(kind: str, service: Service):
    if kind == "fastapi":
        from fastapi.testclient import TestClient

        from genlab.serve.fastapi_app import create_app

        return TestClient(create_app(service))
    from genlab.serve.flask_app import create_app

    return FlaskClient(create_app(service))


@pytest.fixture(scope="module", params=["fastapi", "flask"])
def client(request, service):
    return make_client(request.param, service)


def png_array(data: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


def test_health_readiness_and_the_model_list(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"ready": True}
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert set(models) == set(MODELS)
    assert models["dcgan"]["kind"] == "image" and models["dcgan"]["shape"] == [1, 8, 8]
    assert models["gpt"]["kind"] == "text"
    assert models["realnvp"]["kind"] == "samples"
    assert models["realnvp"]["conditions"] == ["temperature"]
    assert models["cgan"]["conditions"] == ["label"] and models["cgan"]["num_classes"] == 10
    assert models["pixelcnn"]["conditions"] == []  # unconditional: no label
    assert len(models["dcgan"]["version"]) == 12
    # the registry's one line, for the page
    assert models["dcgan"]["description"].startswith("DCGAN (Radford et al. 2016)")
    assert models["gpt"]["description"].startswith("GPT (Radford et al. 2019")


def test_images_come_back_as_pngs_and_are_seeded(client):
    r = client.post("/v1/models/dcgan/generate", json={"n": 3, "seed": 7})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["n"] == 3 and body["seed"] == 7 and len(body["images"]) == 3
    first = png_array(body["images"][0])
    assert first.shape == (8, 8) and first.dtype == np.uint8
    again = client.post("/v1/models/dcgan/generate", json={"n": 3, "seed": 7}).json()
    assert again["images"] == body["images"]
    other = client.post("/v1/models/dcgan/generate", json={"n": 3, "seed": 8}).json()
    assert other["images"] != body["images"]
    assert client.post("/v1/models/dcgan/generate", json={}).json()["n"] == 1


def test_integer_fields_take_integral_floats(client):
    """JSON has one number type: 7.0 is the integer 7 (JSON Schema's "integer" too)."""
    as_ints = client.post("/v1/models/cgan/generate", json={"n": 2, "seed": 7, "label": 3})
    as_floats = client.post("/v1/models/cgan/generate", json={"n": 2.0, "seed": 7.0, "label": 3.0})
    assert as_floats.status_code == 200, as_floats.text
    assert as_floats.json()["images"] == as_ints.json()["images"]
    text = {"prompt": "ROMEO:", "max_new_tokens": 5.0, "top_k": 3.0, "seed": 1.0}
    assert client.post("/v1/models/gpt/generate", json=text).status_code == 200
    for fraction in ({"n": 2.5}, {"label": 3.5}, {"seed": 1e300}):
        assert client.post("/v1/models/cgan/generate", json=fraction).status_code == 422


def test_arrays_match_the_models_own_samples(client, service):
    model = service.find("realnvp").model
    body = client.post(
        "/v1/models/realnvp/generate",
        json={"n": 4, "seed": 3, "format": "npy", "temperature": 0.5},
    ).json()
    array = np.load(io.BytesIO(base64.b64decode(body["array"])))
    with torch.no_grad():
        expected = model.sample(4, generator=torch.Generator().manual_seed(3), temperature=0.5)
    # the server may batch in another shape: a few float32 ulps of O(1) points
    assert array.shape == (4, 2) and np.allclose(array, expected.numpy(), atol=1e-5)
    as_json = client.post(
        "/v1/models/realnvp/generate",
        json={"n": 4, "seed": 3, "format": "json", "temperature": 0.5},
    ).json()
    assert np.allclose(as_json["samples"], array, atol=1e-6)
    labelled = client.post("/v1/models/cgan/generate", json={"n": 2, "label": 3, "seed": 0})
    assert labelled.status_code == 200
    pixel = client.post("/v1/models/pixelcnn/generate", json={"n": 2, "seed": 0})
    assert pixel.status_code == 200 and len(pixel.json()["images"]) == 2


def test_text_whole_and_streamed_are_the_same(client):
    request = {"prompt": "ROMEO:", "max_new_tokens": 20, "seed": 5, "temperature": 1.0}
    whole = client.post("/v1/models/gpt/generate", json=request)
    assert whole.status_code == 200, whole.text
    text = whole.json()["text"]
    assert len(text) >= 10
    streamed = client.post("/v1/models/gpt/generate", json={**request, "stream": True})
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = [block.split("\n") for block in streamed.text.strip().split("\n\n")]
    names = [lines[0].removeprefix("event: ") for lines in events]
    assert names[-1] == "done" and set(names[:-1]) == {"token"}
    pieces = [json.loads(lines[1].removeprefix("data: "))["text"] for lines in events[:-1]]
    assert "".join(pieces) == text
    stopped = client.post("/v1/models/gpt/generate", json={**request, "stop": [text[3:6]]})
    assert stopped.json()["text"] == text[: text.index(text[3:6])]


BAD = [
    # (route, body (bytes or object), status, part of the message)
    ("/v1/models/dcgan/generate", b"{not json", 400, "not valid JSON"),
    ("/v1/models/dcgan/generate", b"[1, 2]", 400, "must be a JSON object"),
    ("/v1/models/dcgan/generate", b"", 400, "the body is empty"),
    ("/v1/models/dcgan/generate", b"[" * 5000 + b"]" * 5000, 400, "nested too deeply"),
    ("/v1/models/dcgan/generate", b'{"n": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "nested"),
    ("/v1/models/dcgan/generate", {"n": "3"}, 422, "n: Input should be a valid integer"),
    ("/v1/models/dcgan/generate", {"n": -1}, 422, "n: Input should be greater than or equal"),
    ("/v1/models/dcgan/generate", {"n": 10**9}, 422, "at most 16 samples"),
    ("/v1/models/dcgan/generate", {"n": 1, "colour": "red"}, 422, "colour: Extra inputs"),
    ("/v1/models/dcgan/generate", {"seed": -5}, 422, "seed"),
    ("/v1/models/dcgan/generate", {"label": 2}, 422, "does not take label"),
    ("/v1/models/dcgan/generate", {"format": "gif"}, 422, "format"),
    ("/v1/models/cgan/generate", {"label": 10}, 422, "label must be < 10"),
    ("/v1/models/realnvp/generate", {"format": "png"}, 422, "arrays, not images"),
    ("/v1/models/realnvp/generate", {"temperature": -1.0}, 422, "temperature"),
    ("/v1/models/gpt/generate", {"prompt": ""}, 422, "prompt"),
    ("/v1/models/gpt/generate", {"prompt": "hi", "max_new_tokens": 65}, 422, "at most 64"),
    ("/v1/models/gpt/generate", {"prompt": "naïve ☃"}, 422, "not in the vocabulary"),
    ("/v1/models/gpt/generate", {"prompt": "hi", "top_p": 1.5}, 422, "top_p"),
    # logits divided by these overflow to inf (NaN probabilities, once a 500)
    ("/v1/models/gpt/generate", {"prompt": "hi", "temperature": 1e-300}, 422, "0 (greedy) or"),
    ("/v1/models/gpt/generate", {"prompt": "hi", "repetition_penalty": 5e-324}, 422, "penalty"),
    ("/v1/models/gpt/generate", {"prompt": "hi", "stop": [""]}, 422, "non-empty"),
    ("/v1/models/nope/generate", {}, 404, "no model named 'nope'"),
    ("/v1/models/dcgan/generate?version=zzz", {}, 404, "has no version 'zzz'"),
]


@pytest.mark.parametrize("route, body, status, message", BAD)
def test_bad_requests_are_4xx_with_a_message(client, route, body, status, message):
    if isinstance(body, bytes):
        r = client.post(route, content=body, headers={"content-type": "application/json"})
    else:
        r = client.post(route, json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert message in error and "\n" not in error


def test_unknown_routes_methods_and_oversized_bodies(client, service):
    assert client.get("/v2/nothing").status_code == 404
    wrong_method = client.get("/v1/models/dcgan/generate")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
    assert "POST" in wrong_method.headers["allow"].split(", ")
    big = json.dumps({"prompt": "x" * (service.limits.max_body_bytes + 10)}).encode()
    r = client.post("/v1/models/gpt/generate", content=big)
    assert r.status_code == 413 and "limit" in r.json()["error"]


def test_the_api_key(service):
    keyed = Service([], api_key=KEY)
    for name in ("dcgan",):
        keyed.add(service.find(name))
    keyed.mark_ready()
    try:
        for kind in ("fastapi", "flask"):
            c = make_client(kind, keyed)
            assert c.get("/healthz").status_code == 200  # liveness needs no key
            r = c.post("/v1/models/dcgan/generate", json={})
            assert r.status_code == 401 and "missing API key" in r.json()["error"]
            assert r.headers["www-authenticate"] == "Bearer"
            wrong = {"Authorization": "Bearer nope"}
            assert c.post("/v1/models/dcgan/generate", json={}, headers=wrong).status_code == 401
            assert c.get("/v1/models", headers=wrong).status_code == 401
            assert c.get("/metrics").status_code == 401
            right = {"Authorization": f"Bearer {KEY}"}
            assert c.post("/v1/models/dcgan/generate", json={}, headers=right).status_code == 200
            assert c.get("/metrics", headers=right).status_code == 200
    finally:
        keyed.close()
    with pytest.raises(GenlabError, match="empty"):
        Service([], api_key="")


def test_metrics_count_requests_and_batches(client):
    client.post("/v1/models/dcgan/generate", json={"n": 2})
    text = client.get("/metrics").text
    assert 'genlab_requests_total{route="generate",status="200"}' in text
    assert "genlab_request_latency_seconds_bucket" in text
    assert 'genlab_batch_size_count{model="dcgan"}' in text
    assert "genlab_models_loaded 5.0" in text


class BrokenService(Service):
    """Models that fail with an unexpected error (a bug, not a bad request)."""

    def describe(self):
        raise RuntimeError("boom in describe")

    @property
    def ready(self):
        raise RuntimeError("boom in ready")


@pytest.mark.parametrize("kind", ["fastapi", "flask"])
def test_an_unexpected_error_is_a_counted_500_with_one_line_and_a_logged_traceback(
    kind, service, caplog
):
    broken = BrokenService([], api_key=None)
    broken.add(service.find("dcgan"))
    served = broken.find("dcgan")
    try:
        if kind == "fastapi":
            from fastapi.testclient import TestClient

            from genlab.serve.fastapi_app import create_app

            # Starlette re-raises after answering (for the server's log): not into the test
            c = TestClient(create_app(broken), raise_server_exceptions=False)
        else:
            c = make_client(kind, broken)
        served.model.decode_latent = lambda *args, **kwargs: 1 / 0  # this instance only
        served.model.sample = served.model.decode_latent
        for route in ("/v1/models", "/readyz"):
            r = c.get(route)
            assert r.status_code == 500 and r.json()["error"].startswith(
                "internal server error (RuntimeError)"
            ), r.text
        r = c.post("/v1/models/dcgan/generate", json={"seed": 1})
        assert r.status_code == 500, r.text
        assert r.json() == {
            "error": "internal server error (ZeroDivisionError); the server's log has details"
        }
        text = c.get("/metrics").text
        for route in ("models", "other", "generate"):
            assert f'genlab_requests_total{{route="{route}",status="500"}} 1.0' in text, text
        logged = [r for r in caplog.records if r.name == "genlab.serve" and r.exc_info]
        assert {type(r.exc_info[1]) for r in logged} == {RuntimeError, ZeroDivisionError}
    finally:
        del served.model.decode_latent, served.model.sample
        broken.close()


def test_readiness_is_false_until_the_models_have_loaded():
    from fastapi.testclient import TestClient

    from genlab.serve.fastapi_app import create_app

    waiting = Service([])
    c = TestClient(create_app(waiting))
    assert c.get("/readyz").status_code == 503
    waiting.mark_ready()
    assert c.get("/readyz").status_code == 200


# --- micro-batching ----------------------------------------------------------------------------


def test_batched_requests_get_the_samples_they_would_get_alone():
    """16 concurrent requests with their own seeds share forward passes, and each gets exactly
    what it gets when served alone (batching off)."""
    alone = Service([str(run("dcgan"))], limits=Limits(max_batch=1))
    batched = Service([str(run("dcgan"))], limits=Limits(max_batch=64, max_wait_ms=200))
    requests = [{"n": 1 + i % 3, "seed": 100 + i, "format": "npy"} for i in range(16)]
    try:
        with ThreadPoolExecutor(16) as pool:
            together = list(pool.map(lambda r: batched.run("dcgan", None, r), requests))
        one_by_one = [alone.run("dcgan", None, r) for r in requests]
    finally:
        alone.close()
        batched.close()
    assert max(r["batch_size"] for r in together) > 3  # requests were merged
    assert all(r["batch_size"] == r["n"] for r in one_by_one)
    for a, b in zip(together, one_by_one, strict=True):
        x = np.load(io.BytesIO(base64.b64decode(a["array"])))
        y = np.load(io.BytesIO(base64.b64decode(b["array"])))
        # batched forward passes have other shapes: a few float32 ulps of the [0, 1] pixels
        assert x.shape == y.shape and np.abs(x - y).max() < 1e-5


def test_the_batcher_keeps_keys_apart_and_respects_the_batch_size():
    from genlab.serve.batching import MicroBatcher

    calls = []
    gate = threading.Event()

    def run_jobs(jobs):
        gate.wait(5)
        calls.append([(j.key, j.size) for j in jobs])
        return [j.payload for j in jobs]

    batcher = MicroBatcher(run_jobs, max_batch=4, max_wait_ms=100)
    try:
        futures = [batcher.submit(1, "a", 0)]  # the worker takes it and waits at the gate
        futures += [batcher.submit(size, key, i) for i, (size, key) in enumerate(
            [(2, "a"), (1, "b"), (2, "a"), (1, "a"), (1, None), (5, "a")], start=1
        )]  # fmt: skip
        gate.set()
        results = [f.result(5) for f in futures]
    finally:
        batcher.close()
    assert results == list(range(7))
    for call in calls:
        keys = {key for key, _ in call}
        assert len(keys) == 1
        assert sum(size for _, size in call) <= 4 or len(call) == 1  # a big job runs alone
        assert None not in keys or len(call) == 1
    assert [(k, s) for k, s in calls[0]] == [("a", 1), ("a", 2), ("a", 1)]  # merged, in order


def test_a_model_that_fails_answers_every_caller_and_the_worker_goes_on():
    from genlab.serve.batching import MicroBatcher

    def boom(jobs):
        if any(j.payload == "bad" for j in jobs):
            raise RuntimeError("boom")
        return [j.payload for j in jobs]

    batcher = MicroBatcher(boom, max_batch=8, max_wait_ms=0)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            batcher.submit(1, None, "bad").result(5)
        assert batcher.submit(1, None, "ok").result(5) == "ok"
    finally:
        batcher.close()


# --- loading -----------------------------------------------------------------------------------


def test_models_load_from_fsspec_urls_with_names_and_versions():
    import fsspec

    memory = fsspec.filesystem("memory")
    source = run("dcgan")
    for path in source.iterdir():
        if path.is_file():
            memory.pipe(f"/runs/dcgan/{path.name}", path.read_bytes())
    svc = Service(["art@v1=memory://runs/dcgan", f"art@v2=file://{source}"])
    try:
        assert [m["version"] for m in svc.describe()["models"]] == ["v1", "v2"]
        a = svc.run("art", "v1", {"n": 2, "seed": 1, "format": "npy"})
        b = svc.run("art", "v2", {"n": 2, "seed": 1, "format": "npy"})
        assert a["array"] == b["array"]
        assert svc.run("art", None, {"seed": 1})["version"] == "v2"  # the last one loaded
    finally:
        svc.close()
    with pytest.raises(GenlabError, match="bad model name"):
        Service(["bad name!=memory://runs/dcgan"])
    with pytest.raises(GenlabError, match="is loaded twice"):
        Service(["a@1=memory://runs/dcgan", "a@1=memory://runs/dcgan"])
    with pytest.raises(GenlabError, match="not a folder"):
        Service(["memory://runs/missing"])


def test_a_corrupt_checkpoint_stops_serve_with_one_line_and_exit_2(tmp_path, capsys):
    import shutil

    from genlab.cli import main

    bad = tmp_path / "bad"
    shutil.copytree(run("dcgan"), bad)
    for weights in bad.glob("*.safetensors"):  # the model's and its EMA's
        weights.write_bytes(b"\x00garbage")
    for flask in ([], ["--flask"]):  # gunicorn's parent loads them in a spawned process
        code = main(["serve", str(bad), *flask])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: corrupt weights file"), err
        assert err.count("\n") == 1, err
    code = main(["serve", str(tmp_path / "missing")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    code = main(["serve", str(run("dcgan")), "--api-key-env", "GENLAB_TEST_UNSET_KEY"])
    assert code == 2 and "unset or empty" in capsys.readouterr().err
    code = main(["serve", str(run("dcgan")), "--max-n", "0"])
    assert code == 2 and "max_n" in capsys.readouterr().err


def test_over_the_time_limit_is_408_and_the_docs_are_served():
    from fastapi.testclient import TestClient

    from genlab.serve.fastapi_app import create_app

    slow = Service([str(run("pixelcnn")), str(run("gpt"))], limits=Limits(timeout_s=0.001))
    try:
        c = TestClient(create_app(slow))
        r = c.post("/v1/models/pixelcnn/generate", json={"n": 16})
        assert r.status_code == 408 and "0.001 s limit" in r.json()["error"]
        r = c.post("/v1/models/gpt/generate", json={"prompt": "A", "max_new_tokens": 50})
        assert r.status_code == 408
        streamed = c.post(
            "/v1/models/gpt/generate", json={"prompt": "A", "max_new_tokens": 50, "stream": True}
        )
        assert "event: error" in streamed.text and "limit" in streamed.text
        assert c.get("/docs").status_code == 200
        spec = c.get("/openapi.json").json()
        assert spec["paths"]["/v1/models/{name}/generate"]["post"]["requestBody"]["required"]
        assert list(spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == [
            "text/plain"
        ]
    finally:
        slow.close()
