"""The image-to-image route, POST /v1/models/{name}/translate, on the FastAPI and Flask apps:
a multipart upload in, a PNG out, for a contract.Translator that genlab has never seen
(tests/plugin/negative.py, registered only here), with the server's limits and one-line 4xx
errors for anything wrong with the upload."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image
from serve_runs import run
from test_service import FlaskClient, _Response, make_client

from genlab import registry
from genlab.serve.schemas import Limits
from genlab.serve.service import Service
from plugin.negative import write_run

pytest.importorskip("fastapi")
pytest.importorskip("flask")

GAIN = 0.5  # the plugin's one weight, saved in its run: answers show the weights were loaded
ROUTE = "/v1/models/negative/translate"


@pytest.fixture(scope="module")
def plugged() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(
            registry.MODELS, "negative", ("plugin.negative:Negative", "a test translator")
        )
        yield


@pytest.fixture(scope="module")
def service(plugged, tmp_path_factory) -> Iterator[Service]:
    folder = write_run(tmp_path_factory.mktemp("translate") / "negative", gain=GAIN)
    svc = Service([f"negative={folder}", f"dcgan={run('dcgan')}"])
    yield svc
    svc.close()


@pytest.fixture(scope="module", params=["fastapi", "flask"])
def client(request, service):
    return upload_client(request.param, service)


class UploadingFlaskClient(FlaskClient):
    """Flask's test client that also sends multipart forms as httpx does (`files=`, `data=`),
    and takes binary answers."""

    def post(self, url, json=None, content=None, headers=None, files=None, data=None):
        if files is None and data is None:
            if json is not None:
                return Answer(self._client.post(url, json=json, headers=headers))
            return Answer(self._client.post(url, data=content, headers=headers))
        form = dict(data or {})
        for name, (filename, body, kind) in (files or {}).items():
            form[name] = (io.BytesIO(body), filename, kind)
        return Answer(self._client.post(url, data=form, content_type="multipart/form-data"))


class Answer(_Response):
    def __init__(self, response):
        self.status_code = response.status_code
        self.headers = response.headers
        self.content = response.get_data()
        self.text = self.content.decode(errors="replace")


def upload_client(kind: str, service: Service):
    if kind == "flask":
        from genlab.serve.flask_app import create_app

        return UploadingFlaskClient(create_app(service))
    return make_client(kind, service)


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG")
    return buffer.getvalue()


def decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


PHOTO = np.random.default_rng(0).integers(0, 256, (5, 3, 3), dtype=np.uint8)  # (H, W, RGB)
STYLE = np.full((2, 2, 3), [255, 128, 0], dtype=np.uint8)  # its mean colour tints the answer


def files(image: bytes | None = None, style: bytes | None = None) -> dict:
    return {
        "image": ("photo.png", png(PHOTO) if image is None else image, "image/png"),
        "style": ("style.png", png(STYLE) if style is None else style, "image/png"),
    }


def expected(amount: float, scale: int) -> np.ndarray:
    """The plugin's answer, computed here: the negative mixed in by `amount`, tinted by the
    style's mean colour, times the saved gain, each pixel repeated `scale` times."""
    x = PHOTO / 255
    y = GAIN * ((1 - amount) * x + amount * (1 - x)) * (STYLE / 255).mean(axis=(0, 1))
    y = y.repeat(scale, axis=0).repeat(scale, axis=1)
    return np.round(np.clip(y, 0, 1) * 255).astype(np.uint8)


def assert_error(response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert words in error and "\n" not in error, error


def test_the_model_list_says_what_a_translator_takes(client):
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    takes = models["negative"]["translate"]
    assert takes["inputs"] == ["image", "style"]
    assert [o["name"] for o in takes["options"]] == ["amount", "scale"]  # not the CLI's `slow`
    amount = takes["options"][0]
    assert (amount["type"], amount["default"], amount["ge"], amount["le"]) == ("number", 1.0, 0, 1)
    assert models["dcgan"]["translate"] is None


@pytest.mark.parametrize("options, scale", [({}, 1), ({"amount": "0.25", "scale": "2"}, 2)])
def test_an_upload_comes_back_as_the_models_png(client, options, scale):
    r = client.post(ROUTE, files=files(), data=options)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-genlab-model"] == "negative" and float(r.headers["x-genlab-latency-ms"]) > 0
    answer = decoded(r.content)
    assert answer.shape == (5 * scale, 3 * scale, 3)
    want = expected(float(options.get("amount", 1.0)), scale)
    assert np.abs(answer.astype(int) - want).max() <= 1  # float32 vs float64 at a rounding edge


def test_grey_and_transparent_uploads_are_read_as_rgb(client):
    grey = np.full((4, 4), 200, dtype=np.uint8)
    clear = np.zeros((4, 4, 4), dtype=np.uint8)  # fully transparent: black, as genlab reads files
    r = client.post(ROUTE, files=files(image=png(grey), style=png(clear)), data={"amount": "0"})
    assert r.status_code == 200, r.text
    assert decoded(r.content).max() == 0  # tinted by a black style
    r = client.post(ROUTE, files=files(image=png(grey)), data={"amount": "0"})
    assert decoded(r.content)[0, 0].tolist() == [100, 50, 0]  # 0.5 * 200 * (1, 128 / 255, 0)


@pytest.mark.parametrize(
    "upload, status, words",
    [
        (files(image=b"just some text"), 415, "image: not an image"),
        (files(image=b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n"), 415, "not an image"),
        (files(style=jpeg(STYLE)[:-40]), 400, "style: corrupt image (OSError: "),
        (files(image=png(PHOTO)[:60]), 400, "image: corrupt image (OSError: image file is trunc"),
        (files(image=b""), 400, "image: the file is empty"),
    ],
    ids=["text", "eps", "truncated-jpeg", "truncated-png", "empty"],
)
def test_a_file_that_is_not_a_whole_image_is_4xx(client, upload, status, words):
    assert_error(client.post(ROUTE, files=upload), status, words)


def test_an_image_the_model_refuses_is_422(client):
    tiny = png(np.zeros((1, 5, 3), dtype=np.uint8))
    assert_error(client.post(ROUTE, files=files(image=tiny)), 422, "image: at least 2x2 pixels")


def test_a_png_with_corrupt_pixels_is_400(client):
    data = bytearray(png(np.random.default_rng(1).integers(0, 256, (32, 32, 3), np.uint8)))
    at = data.index(b"IDAT") + 20
    data[at : at + 40] = bytes(40)  # the compressed pixels zeroed: its header still reads
    assert_error(client.post(ROUTE, files=files(image=bytes(data))), 400, "image: corrupt image")


@pytest.mark.parametrize(
    "data, upload, status, words",
    [
        ({"strength": "1"}, None, 422, "strength: unknown field (negative takes the files image"),
        ({"slow": "true"}, None, 422, "slow: unknown field"),  # offered by the CLI only
        ({"amount": "2"}, None, 422, "amount must be a number <= 1"),
        ({"amount": "lots"}, None, 422, "amount must be float, got 'lots'"),
        ({"scale": "1.5"}, None, 422, "scale must be int"),
        ({"amount": "nan"}, None, 422, "amount"),
        ({}, {"image": files()["image"]}, 422, "style: missing (negative takes the files"),
        ({"image": "text"}, {"style": files()["style"]}, 422, "image: send a file here"),
        ({}, {**files(), "amount": ("a.txt", b"1", "text/plain")}, 422, "amount: a text field"),
    ],
    ids=["unknown", "cli-only", "over-bound", "not-a-number", "not-int", "nan", "missing",
         "text-image", "file-option"],
)  # fmt: skip
def test_bad_fields_are_422_naming_the_field(client, data, upload, status, words):
    assert_error(client.post(ROUTE, files=upload or files(), data=data), status, words)


def test_a_body_that_is_not_a_form_is_415_or_400(client):
    r = client.post(ROUTE, json={"image": "photo.png"})
    assert_error(r, 415, "send the images as multipart/form-data")
    headers = {"content-type": "multipart/form-data; boundary=elsewhere"}
    r = client.post(ROUTE, content=b"--here\r\n\r\nno form\r\n--here--\r\n", headers=headers)
    assert_error(r, 400, "malformed multipart/form-data body")


def test_a_model_that_does_not_translate_is_refused(client):
    r = client.post("/v1/models/dcgan/translate", files=files())
    assert_error(r, 404, "dcgan does not translate images (a DCGAN: POST /v1/models/dcgan/gen")
    assert_error(client.post("/v1/models/nothing/translate", files=files()), 404, "no model")
    r = client.post(f"{ROUTE}?version=0", files=files())
    assert_error(r, 404, "has no version '0'")


@pytest.mark.parametrize("kind", ["fastapi", "flask"])
def test_413_for_too_many_bytes_or_pixels(service, kind):
    small = Service([], limits=Limits(max_body_bytes=4096, max_pixels=64 * 64))
    small.add(service.find("negative"))
    try:
        c = upload_client(kind, small)
        big = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        assert_error(c.post(ROUTE, files=files(image=png(big))), 413, "byte limit")
        tall = np.zeros((65, 64, 3), dtype=np.uint8)  # 4160 pixels in a few hundred bytes
        assert_error(c.post(ROUTE, files=files(image=png(tall))), 413, "64x65 is 4160 pixels, over")
        assert c.post(ROUTE, files=files(image=png(tall[:64]))).status_code == 200
        # headers that promise more pixels than PIL itself takes: refused from the header alone
        r = c.post(ROUTE, files=files(image=forged_png(3000, 3000)))
        assert_error(r, 413, "image: 3000x3000 is 9000000 pixels, over the 4096 pixel limit")
        r = c.post(ROUTE, files=files(image=forged_png(100_000, 100_000)))
        assert_error(r, 413, "image: Image size (10000000000 pixels) exceeds limit")
        text = c.get("/metrics").text
        assert 'genlab_requests_total{route="translate",status="413"} 4.0' in text
    finally:
        small.close()


def forged_png(width: int, height: int) -> bytes:
    """A PNG's signature and header chunk claiming width x height, then the start of its
    pixels (a few bytes of an IDAT chunk): PIL opens it and reads the size."""
    import struct
    import zlib

    header = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    chunk = struct.pack(">I", 13) + header + struct.pack(">I", zlib.crc32(header))
    return signature + chunk + struct.pack(">I", 1000) + b"IDAT" + bytes(16)


def test_the_openapi_document_describes_the_form(client):
    spec = client.get("/openapi.json").json()
    route = spec["paths"]["/v1/models/{name}/translate"]["post"]
    names = [p for p in route["parameters"] if p["name"] == "name"]
    assert names[0]["schema"]["enum"] == ["negative"]  # only the models that translate
    form = route["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["image"] and form["additionalProperties"] is False
    assert form["properties"]["style"] == {**form["properties"]["style"], "format": "binary"}
    assert form["properties"]["scale"]["type"] == "integer"
    assert form["properties"]["scale"]["maximum"] == 4
    assert "slow" not in form["properties"]
    assert set(route["responses"]) == {"200", "400", "401", "404", "408", "413", "415", "422"}
    assert list(route["responses"]["200"]["content"]) == ["image/png"]


@contextmanager
def uvicorn_serving(service: Service) -> Iterator[int]:
    """`service`'s FastAPI app behind uvicorn on a free port, in a thread; yields the port."""
    import uvicorn

    from genlab.serve.fastapi_app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(service), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def test_a_stalled_upload_gets_408_and_the_connection_closes(service):
    """The form arrives through the same deadline as any body: half an upload, then nothing."""
    limited = Service([], limits=Limits(timeout_s=1))
    limited.add(service.find("negative"))
    try:
        with uvicorn_serving(limited) as port:
            connection = socket.create_connection(("127.0.0.1", port), timeout=30)
            with connection:
                connection.sendall(
                    f"POST {ROUTE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n"
                    "Content-Type: multipart/form-data; boundary=XX\r\n\r\n--XX\r\n".encode()
                )
                answer = b""
                while chunk := connection.recv(4096):  # until the server closes
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 408"), answer
            assert b"did not arrive within the 1 s limit" in answer
    finally:
        limited.close()


@pytest.mark.parametrize("kind", ["fastapi", "flask"])
def test_generated_uploads_never_get_a_5xx_and_answer_as_the_spec_says(service, kind):
    """schemathesis on the translate route with a translator loaded (tests/serve/test_openapi.py
    fuzzes every route, but its server has no translator): valid and invalid forms."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings, strategies
    from schemathesis import GenerationMode, checks

    from genlab.serve import fastapi_app, flask_app

    if kind == "fastapi":
        schema = schemathesis.openapi.from_asgi("/openapi.json", fastapi_app.create_app(service))
    else:
        schema = schemathesis.openapi.from_wsgi("/openapi.json", flask_app.create_app(service))
    operation = schema["/v1/models/{name}/translate"]["POST"]
    every_check = [
        checks.not_a_server_error,
        checks.status_code_conformance,
        checks.content_type_conformance,
        checks.response_schema_conformance,
        checks.negative_data_rejection,
    ]

    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    statuses = set()

    @given(case=strategies.one_of(*(operation.as_strategy(mode) for mode in modes)))
    @settings(
        max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    def answers_as_the_spec_says(case):
        statuses.add(case.call_and_validate(checks=every_check).status_code)

    answers_as_the_spec_says()
    assert {415, 422} <= statuses, statuses  # the uploads reached the form and image checks
