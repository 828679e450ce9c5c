"""The FastAPI adapter: the service's routes, OpenAPI at /openapi.json, docs at /docs, text
streamed as server-sent events. Run by uvicorn (`genlab serve`).

The body of /v1/models/{name}/generate is read and validated by the service core (the same code
as the Flask app), not by FastAPI, so both apps answer every bad request with the same status
and `{"error": "..."}`; the OpenAPI spec still documents the body (SampleRequest | TextRequest).
A sampling request with `Accept: audio/wav` is answered with the WAV file itself (one audio
sample; genlab.serve.service.wants_wav). So is the multipart form of /v1/models/{name}/translate (image to image: an uploaded image in,
a PNG out), read by genlab.serve.uploads. A body must arrive within the request time limit (`--timeout`): uvicorn has no deadline of
its own for it, and a client that stalls half-way would otherwise hold its connection forever;
it gets a 408 and the connection closes.
"""

# No `from __future__ import annotations`: FastAPI reads the route functions' annotations
# (Request), imported inside the functions, at definition time.
import asyncio
import time
from importlib import resources
from typing import Any

from genlab.serve.encoders import WAV
from genlab.serve.schemas import openapi_request_schema
from genlab.serve.service import Service, wants_wav
from genlab.serve.store import Served

GENERATE = "/v1/models/{name}/generate"
TRANSLATE = "/v1/models/{name}/translate"
INLINE_VALUES = 16 * 1024  # samples up to this many values are encoded on the event loop
# each streamed event (OpenAPI 3.2's way): "token" events (data {"text"}), then "done" (data
# {"seed", "latency_ms"}) or "error" (data {"error"})
SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": ["token", "done", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}


def page_html() -> str:
    return resources.files("genlab.serve").joinpath("static/index.html").read_text("utf-8")


def openapi_spec(contract: Any = None, service: Service | None = None) -> dict[str, Any]:
    """The OpenAPI document of the routes (the Flask app serves the same one)."""
    return create_app(service or Service([]), contract=contract).openapi()


def create_app(service: Service, *, contract: Any = None):
    """The ASGI app over `service`; `contract` (genlab.serve.contracts) adds a cloud's routes."""
    from fastapi import FastAPI

    from genlab import __version__

    app = FastAPI(
        title="genlab",
        version=__version__,
        description="Samples and text from genlab models (docs/deploy.md).",
    )
    app.state.service = service
    error = _error_answer(service)
    read_bytes = _body_reader(service)

    async def read_body(request: Any) -> dict[str, Any]:
        return service.parse_body(await read_bytes(request))

    _add_error_handlers(app, error)
    _add_status_routes(app, service, error)
    _add_generate_route(app, service, read_body, error)
    _add_translate_route(app, service, read_bytes, error)
    if contract is not None:
        contract.add_fastapi_routes(app, service, read_body, error)
    app.openapi = _openapi(app, service)  # type: ignore[method-assign]
    return app


def _error_answer(service: Service):
    from fastapi.responses import JSONResponse

    def error(exc: Exception, route: str, start: float) -> JSONResponse:
        """The answer to a failed request (`exc` from the route), counted in the metrics."""
        problem = service.problem(exc)
        service.metrics.observe(route, problem.status, time.perf_counter() - start)
        return JSONResponse(
            {"error": problem.message}, status_code=problem.status, headers=problem.headers()
        )

    return error


def _add_error_handlers(app: Any, error: Any) -> None:
    """FastAPI's own errors as `{"error": ...}`; an exception outside the routes' handling is
    a counted 500."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = {404: f"no route {request.url.path}", 405: "method not allowed here"}.get(
            exc.status_code, str(exc.detail)
        )  # a 405's headers carry Allow
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        """Outside the routes' own handling (which counts under the route's name)."""
        return error(exc, "other", time.perf_counter())

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"error": "; ".join(parts)}, status_code=422)


def _body_reader(service: Service):
    """`await read_bytes(request)`: the body, read within the time limit (408 otherwise) and
    the size limit (413)."""
    from fastapi import Request

    async def read_bytes(request: Request) -> bytes:
        length = request.headers.get("content-length")
        service.check_length(int(length) if length and length.isdigit() else None)

        async def receive() -> bytes:
            chunks, size = [], 0
            async for chunk in request.stream():
                size += len(chunk)
                service.check_length(size)  # a chunked body has no length up front
                chunks.append(chunk)
            return b"".join(chunks)

        try:
            return await asyncio.wait_for(receive(), service.limits.timeout_s)
        except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11 on
            raise service.body_timeout() from None

    return read_bytes


KEYED = {401: {"description": "missing or wrong API key"}}


def _add_status_routes(app: Any, service: Service, error: Any) -> None:
    """The page, liveness, readiness, the metrics and the model list."""
    from fastapi import Request
    from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(page_html())

    @app.get("/healthz", summary="liveness")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="readiness: true once the models have loaded")
    def readyz():
        if not service.ready:
            return JSONResponse({"ready": False}, status_code=503)
        return {"ready": True}

    summary = "Prometheus metrics (text exposition format)"

    @app.get("/metrics", summary=summary, response_class=PlainTextResponse, responses=dict(KEYED))
    def metrics(request: Request):
        start = time.perf_counter()
        try:
            service.authorize(request.headers.get("authorization"))
            body, content_type = service.metrics.text()
        except Exception as e:
            return error(e, "metrics", start)
        return Response(body, media_type=content_type)

    @app.get("/v1/models", summary="the loaded models", responses=dict(KEYED))
    def models(request: Request):
        start = time.perf_counter()
        try:
            service.authorize(request.headers.get("authorization"))
            listing = service.describe()
        except Exception as e:
            return error(e, "models", start)
        service.metrics.observe("models", 200, time.perf_counter() - start)
        return listing


def _generate_docs() -> dict[str, Any]:
    """The OpenAPI description of the generate route (its body is read by the service)."""
    return {
        "summary": "samples (image models) or text (language models)",
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": openapi_request_schema()}},
            }
        },
        "responses": {
            200: {
                "description": (
                    'samples or text; with `"stream": true` server-sent events; with '
                    "`Accept: audio/wav` one audio sample as a WAV file"
                ),
                "content": {
                    "text/event-stream": {"itemSchema": SSE_EVENT},
                    WAV: {"schema": {"type": "string", "format": "binary"}},
                },
            },
            400: {"description": "malformed, empty or too deeply nested JSON"},
            **KEYED,
            404: {"description": "unknown model or version"},
            406: {"description": "`Accept: audio/wav` for a model that does not make audio"},
            408: {"description": "over the time limit (reading the body, or the work)"},
            413: {"description": "body too large"},
            422: {"description": "invalid or over-limit fields"},
        },
    }


def _add_generate_route(app: Any, service: Service, read_body: Any, error: Any) -> None:
    """POST /v1/models/{name}/generate: samples as JSON (or one as a WAV file), text as JSON or
    server-sent events."""
    from fastapi import Request
    from fastapi.responses import JSONResponse, Response, StreamingResponse
    from starlette.concurrency import run_in_threadpool

    @app.post(GENERATE, **_generate_docs())
    async def generate(request: Request, name: str, version: str | None = None):
        start = time.perf_counter()
        try:
            service.authorize(request.headers.get("authorization"))
            payload = await read_body(request)
            if wants_wav(request.headers.get("accept")):
                data, headers = await _wav(service, service.find(name, version), payload)
                service.metrics.observe("generate", 200, time.perf_counter() - start)
                return Response(data, media_type=WAV, headers=headers)
            if payload.get("stream") is True:
                events = service.stream(name, version, payload)
                service.metrics.observe("generate", 200, time.perf_counter() - start)
                return StreamingResponse(
                    events,
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                )
            served = service.find(name, version)
            if served.answers_text:
                result = await run_in_threadpool(service.run, name, version, payload)
            else:
                result = await _samples(service, served, payload)
        except Exception as e:
            return error(e, "generate", start)
        service.metrics.observe("generate", 200, time.perf_counter() - start)
        return JSONResponse(result)  # already plain JSON: skip FastAPI's encoder


async def _drawn(service: Service, pending: Any) -> tuple[Any, int]:
    """(samples, batch size) of a started sampling job, awaited without holding a thread."""
    try:
        return await asyncio.wait_for(asyncio.wrap_future(pending.future), service.limits.timeout_s)
    except Exception as e:
        raise service.sample_error(pending, e) from None


async def _samples(service: Service, served: Served, payload: dict[str, Any]) -> dict[str, Any]:
    """A sampling request: waits for the model's batcher without holding a thread."""
    from starlette.concurrency import run_in_threadpool

    pending = service.start_sample(served, service.validate(served, payload))
    samples, size = await _drawn(service, pending)
    if samples.numel() <= INLINE_VALUES:  # a few small PNGs: cheaper than a thread hop
        return service.finish_sample(pending, samples, size)
    return await run_in_threadpool(service.finish_sample, pending, samples, size)


async def _wav(service: Service, served: Served, payload: dict[str, Any]):
    """One audio sample as (WAV bytes, headers): waits for the batcher without a thread."""
    from starlette.concurrency import run_in_threadpool

    pending = service.start_sample(served, service.wav_request(served, payload))
    samples, _ = await _drawn(service, pending)
    return await run_in_threadpool(service.finish_wav, pending, samples)


def _translate_docs() -> dict[str, Any]:
    """The OpenAPI description of the translate route (its form is read by the service)."""
    from genlab.serve.schemas import openapi_translate_schema

    return {
        "summary": "image to image (style transfer, super-resolution): a PNG of the upload",
        "description": (
            "For a model that translates images (its `translate` in /v1/models is not null): "
            "a multipart form with a file per image input and a text field per option."
        ),
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {"multipart/form-data": {"schema": openapi_translate_schema()}},
            }
        },
        "response_class": _png_response(),
        "responses": {
            200: {
                "description": "the translated image",
                "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
            },
            400: {"description": "a malformed form, an empty, truncated or corrupt image"},
            **KEYED,
            404: {"description": "unknown model or version, or a model that does not translate"},
            408: {"description": "over the time limit (reading the body, or the work)"},
            413: {"description": "body too large, or an image with too many pixels"},
            415: {"description": "not a multipart form, or a file that is not an image"},
            422: {"description": "a missing, unknown or invalid field"},
        },
    }


def _png_response():
    from fastapi.responses import Response

    class PNGResponse(Response):
        media_type = "image/png"

    return PNGResponse


def _add_translate_route(app: Any, service: Service, read_bytes: Any, error: Any) -> None:
    """POST /v1/models/{name}/translate: a multipart upload in, a PNG out."""
    from fastapi import Request
    from fastapi.responses import Response
    from starlette.concurrency import run_in_threadpool

    @app.post(TRANSLATE, **_translate_docs())
    async def translate(request: Request, name: str, version: str | None = None):
        start = time.perf_counter()
        try:
            service.authorize(request.headers.get("authorization"))
            body = await read_bytes(request)
            content_type = request.headers.get("content-type")
            pending = await run_in_threadpool(  # decoding images: off the event loop
                service.start_translate, name, version, content_type, body
            )
            try:
                output = await asyncio.wait_for(
                    asyncio.wrap_future(pending.future), service.limits.timeout_s
                )
            except Exception as e:
                raise service.sample_error(pending, e) from None
            png, headers = await run_in_threadpool(service.finish_translate, pending, output)
        except Exception as e:
            return error(e, "translate", start)
        service.metrics.observe("translate", 200, time.perf_counter() - start)
        return Response(png, media_type="image/png", headers=headers)


def _openapi(app: Any, service: Service):
    def openapi() -> dict[str, Any]:
        """FastAPI's document, with the loaded models' names and versions as enums (for the
        translate route, those of the models that translate)."""
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            spec = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            every = [s for versions in service.models.values() for s in versions.values()]
            for route, served in (
                (GENERATE, every),
                (TRANSLATE, [s for s in every if s.translates]),
            ):
                known = {
                    "name": list(dict.fromkeys(s.name for s in served)),
                    "version": list(dict.fromkeys(s.version for s in served)),
                }
                for parameter in spec["paths"][route]["post"].get("parameters", []):
                    if known.get(parameter["name"]):
                        parameter["schema"] = {"type": "string", "enum": known[parameter["name"]]}
            app.openapi_schema = spec
        return app.openapi_schema

    return openapi
