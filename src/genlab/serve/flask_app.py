"""The Flask adapter (WSGI, for gunicorn): the same routes, statuses and `{"error": ...}` bodies
as the FastAPI app, over the same service core."""

from __future__ import annotations

import time
from typing import Any

from genlab.serve.service import ServeError, Service


def create_app(service: Service, *, contract: Any = None):
    from flask import Flask, Response, jsonify, request
    from werkzeug.exceptions import HTTPException

    from genlab.serve.fastapi_app import GENERATE, page_html

    app = Flask("genlab.serve")
    app.config["MAX_CONTENT_LENGTH"] = service.limits.max_body_bytes
    app.extensions["genlab_service"] = service

    def error(status: int, message: str, route: str, start: float):
        service.metrics.observe(route, status, time.perf_counter() - start)
        response = jsonify({"error": message})
        response.status_code = status
        if status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        message = {
            404: f"no route {request.path}",
            405: "method not allowed here",
            413: f"request body is over the {service.limits.max_body_bytes} byte limit",
        }.get(exc.code or 500, exc.description or exc.name)
        response = jsonify({"error": message})
        response.status_code = exc.code or 500
        return response

    def read_body() -> dict[str, Any]:
        service.check_length(request.content_length)
        return service.parse_body(request.get_data(cache=False))

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
        except ServeError as e:
            return error(e.status, e.message, "metrics", start)
        body, content_type = service.metrics.text()
        return Response(body, content_type=content_type)

    @app.get("/v1/models")
    def models():
        start = time.perf_counter()
        try:
            service.authorize(request.headers.get("Authorization"))
        except ServeError as e:
            return error(e.status, e.message, "models", start)
        service.metrics.observe("models", 200, time.perf_counter() - start)
        return jsonify(service.describe())

    @app.post(GENERATE.replace("{name}", "<name>"))
    def generate(name: str):
        start = time.perf_counter()
        version = request.args.get("version")
        try:
            service.authorize(request.headers.get("Authorization"))
            payload = read_body()
            if payload.get("stream") is True:
                events = service.stream(name, version, payload)
                service.metrics.observe("generate", 200, time.perf_counter() - start)
                return Response(
                    events,
                    mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                )
            result = service.run(name, version, payload)
        except ServeError as e:
            return error(e.status, e.message, "generate", start)
        service.metrics.observe("generate", 200, time.perf_counter() - start)
        return jsonify(result)

    if contract is not None:
        contract.add_flask_routes(app, service, read_body, error)
    return app
