"""The Flask adapter (WSGI, for gunicorn): the same routes, statuses and `{"error": ...}` bodies
as the FastAPI app, over the same service core.

Under gunicorn the body must arrive within the request time limit (`--timeout`): gunicorn reads
it with a blocking socket and no deadline, so a client that stalls half-way would hold one of
the worker's threads forever. The app sets that limit as the connection's socket timeout
(gunicorn hands the socket over as `gunicorn.socket`) and reads the body from gunicorn itself
(werkzeug's reader would turn the timeout into "client disconnected"): a body that stops
arriving for that long gets a 408, and the connection is shut for reading so that gunicorn closes
it after the answer (it drops an app's `Connection: close`). Other WSGI servers keep their own.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from genlab.serve.service import ServeError, Service, wants_wav


def create_app(service: Service, *, contract: Any = None):
    """The WSGI app over `service`; `contract` (genlab.serve.contracts) adds a cloud's routes."""
    from flask import Flask

    app = Flask("genlab.serve")
    app.config["MAX_CONTENT_LENGTH"] = service.limits.max_body_bytes
    app.extensions["genlab_service"] = service
    error = _error_answer(service)
    _add_error_handlers(app, service, error)
    _add_status_routes(app, service, error, contract)
    read_bytes = _body_reader(service)

    def read_body() -> dict[str, Any]:
        return service.parse_body(read_bytes())

    _add_generate_route(app, service, read_body, error)
    _add_translate_route(app, service, read_bytes, error)
    if contract is not None:
        contract.add_flask_routes(app, service, read_body, error)
    return app


def _http_message(service: Service, exc: Any) -> str:
    """The one line for werkzeug's own HTTP errors (404, 405, 413, ...)."""
    from flask import request

    return {
        404: f"no route {request.path}",
        405: "method not allowed here",
        413: f"request body is over the {service.limits.max_body_bytes} byte limit",
    }.get(exc.code or 500, exc.description or exc.name)


def _error_answer(service: Service):
    from flask import jsonify
    from werkzeug.exceptions import HTTPException

    def error(exc: Exception, route: str, start: float):
        """The answer to a failed request (`exc` from the route), counted in the metrics."""
        if isinstance(exc, HTTPException):  # werkzeug's own, e.g. while reading the body
            exc = ServeError(exc.code or 500, _http_message(service, exc))
        problem = service.problem(exc)
        service.metrics.observe(route, problem.status, time.perf_counter() - start)
        response = jsonify({"error": problem.message})
        response.status_code = problem.status
        response.headers.update(problem.headers())
        return response

    return error


def _add_error_handlers(app: Any, service: Service, error: Any) -> None:
    """werkzeug's errors as `{"error": ...}` (a 405 keeps its Allow); an exception outside the
    routes' handling is a counted 500."""
    from flask import jsonify
    from werkzeug.exceptions import HTTPException

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        response = jsonify({"error": _http_message(service, exc)})
        response.status_code = exc.code or 500
        for name, value in exc.get_headers():  # a 405's Allow
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        """Outside the routes' own handling (which counts under the route's name)."""
        return error(exc, "other", time.perf_counter())


def _body_reader(service: Service):
    """`read_bytes()`: the request's body, within the time limit under gunicorn (see the
    module docstring) and the size limit."""
    from flask import request

    def read_bytes() -> bytes:
        service.check_length(request.content_length)
        connection = request.environ.get("gunicorn.socket")
        if connection is None:  # not gunicorn: werkzeug reads it
            return request.get_data(cache=False)
        connection.settimeout(service.limits.timeout_s)  # per blocking read (see above)
        try:  # one byte over the limit is enough to refuse it (a chunked body has no length)
            body = request.environ["wsgi.input"].read(service.limits.max_body_bytes + 1)
        except TimeoutError:  # socket.timeout is this one from Python 3.10 on
            connection.shutdown(socket.SHUT_RD)  # gunicorn finds no next request: it closes
            raise service.body_timeout() from None
        service.check_length(len(body))
        return body

    return read_bytes


def _add_status_routes(app: Any, service: Service, error: Any, contract: Any) -> None:
    """The page, the OpenAPI document, liveness, readiness, the metrics and the model list."""
    from flask import Response, jsonify, request

    from genlab.serve.fastapi_app import page_html

    @app.get("/")
    def page():
        return Response(page_html(), mimetype="text/html")

    spec: dict[str, Any] = {}

    @app.get("/openapi.json")
    def openapi():
        if not spec:  # the FastAPI app's document: the same routes and bodies
            from genlab.serve.fastapi_app import openapi_spec

            spec.update(openapi_spec(contract, service))
        return jsonify(spec)

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz():
        if not service.ready:
            return jsonify({"ready": False}), 503
        return jsonify({"ready": True})

    @app.get("/metrics")
    def metrics():
        start = time.perf_counter()
        try:
            service.authorize(request.headers.get("Authorization"))
            body, content_type = service.metrics.text()
        except Exception as e:
            return error(e, "metrics", start)
        return Response(body, content_type=content_type)

    @app.get("/v1/models")
    def models():
        start = time.perf_counter()
        try:
            service.authorize(request.headers.get("Authorization"))
            listing = service.describe()
        except Exception as e:
            return error(e, "models", start)
        service.metrics.observe("models", 200, time.perf_counter() - start)
        return jsonify(listing)


def _add_generate_route(app: Any, service: Service, read_body: Any, error: Any) -> None:
    """POST /v1/models/<name>/generate: samples as JSON (or one as a WAV file), text as JSON or
    server-sent events."""
    from flask import Response, jsonify, request

    from genlab.serve.encoders import WAV
    from genlab.serve.fastapi_app import GENERATE

    @app.post(GENERATE.replace("{name}", "<name>"))
    def generate(name: str):
        start = time.perf_counter()
        version = request.args.get("version")
        try:
            service.authorize(request.headers.get("Authorization"))
            payload = read_body()
            if wants_wav(request.headers.get("Accept")):
                data, headers = service.run_wav(name, version, payload)
                service.metrics.observe("generate", 200, time.perf_counter() - start)
                return Response(data, mimetype=WAV, headers=headers)
            if payload.get("stream") is True:
                events = service.stream(name, version, payload)
                service.metrics.observe("generate", 200, time.perf_counter() - start)
                return Response(
                    events,
                    mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                )
            result = service.run(name, version, payload)
        except Exception as e:
            return error(e, "generate", start)
        service.metrics.observe("generate", 200, time.perf_counter() - start)
        return jsonify(result)


def _add_translate_route(app: Any, service: Service, read_bytes: Any, error: Any) -> None:
    """POST /v1/models/<name>/translate: a multipart upload in, a PNG out."""
    from flask import Response, request

    from genlab.serve.fastapi_app import TRANSLATE

    @app.post(TRANSLATE.replace("{name}", "<name>"))
    def translate(name: str):
        start = time.perf_counter()
        try:
            service.authorize(request.headers.get("Authorization"))
            body = read_bytes()
            png, headers = service.translate(
                name, request.args.get("version"), request.headers.get("Content-Type"), body
            )
        except Exception as e:
            return error(e, "translate", start)
        service.metrics.observe("translate", 200, time.perf_counter() - start)
        return Response(png, mimetype="image/png", headers=headers)
