"""Cloud contracts: the routes, port and model location each platform expects.

- generic: the service's own routes only (`/v1/...`), port 8000.
- SageMaker (bring your own container): `GET /ping` (200 once ready), `POST /invocations` (one
  request object, plus an optional "model" and "version" when several models are loaded), port
  8080 or `SAGEMAKER_BIND_TO_PORT`; models from `/opt/ml/model` (`SM_MODEL_DIR` overrides it):
  that folder is a run, or holds runs. SageMaker starts the container as `docker run IMAGE
  serve`, which the image's entry point (`genlab`) turns into `genlab serve`.
- Vertex AI (custom container): port `AIP_HTTP_PORT` (8080), health `AIP_HEALTH_ROUTE`
  (/health), predictions `AIP_PREDICT_ROUTE` (/predict): `{"instances": [request, ...],
  "parameters": {...}}` in (parameters are defaults for every instance), `{"predictions": [...]}`
  out, in order; models from `AIP_STORAGE_URI` (a gs:// folder, read with fsspec).
- Azure ML: a `score.py` with `init()` (loads the runs under `AZUREML_MODEL_DIR`) and
  `run(raw_data)` (a request object, or `{"instances": [...]}` as for Vertex), written by
  `genlab azure-score`; `genlab serve --contract azure` serves the same `POST /score` locally.

All contracts keep the generic routes too (health, readiness, metrics, the web page, /v1).
"""

# No `from __future__ import annotations`: FastAPI reads the route functions' annotations
# (Request), imported inside the functions, at definition time.
import os
from pathlib import Path
from typing import Any

from genlab.errors import GenlabError
from genlab.serve.service import ServeError, Service

CONTRACTS = ("generic", "sagemaker", "vertex", "azure")


def runs_in(folder: str | Path) -> list[str]:
    """A run folder itself, or the run folders inside it (sorted): as model specs."""
    if "://" in str(folder):
        return _runs_in_url(str(folder))
    folder = Path(folder)
    if (folder / "config.json").is_file():
        return [str(folder)]
    if not folder.is_dir():
        raise GenlabError(f"model folder {folder} does not exist")
    runs = sorted(str(p) for p in folder.iterdir() if (p / "config.json").is_file())
    if not runs:
        raise GenlabError(f"no genlab run in {folder} (a run folder has config.json)")
    return runs


def _runs_in_url(url: str) -> list[str]:
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(url)
        root = root.rstrip("/")
        if fs.exists(f"{root}/config.json"):
            return [url]
        found = sorted(
            p for p in fs.ls(root, detail=False) if fs.exists(f"{p.rstrip('/')}/config.json")
        )
    except (ImportError, ValueError, OSError) as e:
        raise GenlabError(f"cannot read {url}: {str(e).splitlines()[0]}") from None
    if not found:
        raise GenlabError(f"no genlab run in {url} (a run folder has config.json)")
    prefix = url.split("://", 1)[0] + "://"
    return [p if "://" in p else prefix + p.lstrip("/") for p in found]


def _split(payload: dict[str, Any]) -> tuple[str | None, str | None, dict[str, Any]]:
    payload = dict(payload)
    name, version = payload.pop("model", None), payload.pop("version", None)
    for what, value in (("model", name), ("version", version)):
        if value is not None and not isinstance(value, str):
            raise ServeError(422, f"{what}: must be a string")
    return name, version, payload


def invoke(service: Service, payload: dict[str, Any]) -> dict[str, Any]:
    """One request object (SageMaker, Azure): `model`/`version` pick the model."""
    name, version, request = _split(payload)
    if request.get("stream") is True:
        raise ServeError(422, "stream: this contract answers with one object")
    return service.run(name, version, request)


def predict(service: Service, payload: dict[str, Any]) -> dict[str, Any]:
    """Vertex AI's {"instances": [...], "parameters": {...}} -> {"predictions": [...]}.
    Sampling instances are queued together (so they share forward passes)."""
    instances = payload.get("instances")
    parameters = payload.get("parameters") or {}
    if not isinstance(instances, list) or not instances:
        raise ServeError(422, "instances: a non-empty list of request objects is required")
    if not isinstance(parameters, dict):
        raise ServeError(422, "parameters: must be an object")
    if set(payload) - {"instances", "parameters"}:
        extra = ", ".join(sorted(set(payload) - {"instances", "parameters"}))
        raise ServeError(422, f"unknown fields: {extra}")
    pending: list[Any] = []
    for i, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise ServeError(422, f"instances[{i}]: must be an object")
        try:
            name, version, request = _split({**parameters, **instance})
            if request.get("stream") is True:
                raise ServeError(422, "stream: this contract answers with one object")
            served = service.find(name, version)
            checked = service.validate(served, request)
            if served.answers_text:
                pending.append(("text", name, version, request))
            else:
                pending.append(("sample", service.start_sample(served, checked)))
        except ServeError as e:
            for item in pending:
                if item[0] == "sample":
                    item[1].future.cancel()
            raise ServeError(e.status, f"instances[{i}]: {e.message}") from None
    predictions = []
    for i, item in enumerate(pending):
        try:
            if item[0] == "text":
                predictions.append(service.run(item[1], item[2], item[3]))
            else:
                predictions.append(service.collect(item[1]))
        except ServeError as e:
            for item in pending[i + 1 :]:
                if item[0] == "sample":
                    item[1].future.cancel()
            raise ServeError(e.status, f"instances[{i}]: {e.message}") from None
    return {"predictions": predictions}


class Contract:
    name = "generic"
    default_port = 8000

    def port(self) -> int:
        return self.default_port

    def model_specs(self, runs: list[str]) -> list[str]:
        """The specs to load: the runs given (a local folder that is not a run but holds runs
        stands for them all, e.g. a container's /models), else the platform's model folder."""
        if not runs:
            return self.platform_specs()
        specs = []
        for spec in runs:
            if "=" in spec or spec.startswith("hf:"):
                specs.append(spec)
            elif "://" in spec:  # a remote run, or a remote folder of runs
                specs += runs_in(spec)
            else:
                path = Path(spec)
                holds_runs = path.is_dir() and not (path / "config.json").is_file()
                specs += runs_in(path) if holds_runs else [spec]
        return specs

    def platform_specs(self) -> list[str]:
        raise GenlabError("give at least one run directory to serve")

    def add_fastapi_routes(self, app, service, read_body, error) -> None:
        pass

    def add_flask_routes(self, app, service, read_body, error) -> None:
        pass


def _env_port(variable: str, default: int) -> int:
    value = os.environ.get(variable)
    if value is None:
        return default
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise GenlabError(f"{variable} must be a port number, got {value!r}")
    return int(value)


class _OneRoute(Contract):
    """A contract with a health route and one JSON-in, JSON-out route."""

    health_route = "/ping"
    predict_route = "/invocations"

    def handle(self, service: Service, payload: dict[str, Any]) -> dict[str, Any]:
        return invoke(service, payload)

    def add_fastapi_routes(self, app, service, read_body, error) -> None:
        import time

        from fastapi import Request
        from fastapi.responses import JSONResponse
        from starlette.concurrency import run_in_threadpool

        @app.get(self.health_route, summary=f"{self.name}: health")
        def health():
            if not service.ready:
                return JSONResponse({"ready": False}, status_code=503)
            return {"ready": True}

        @app.post(self.predict_route, summary=f"{self.name}: predictions")
        async def predictions(request: Request):
            start = time.perf_counter()
            try:
                service.authorize(request.headers.get("authorization"))
                payload = await read_body(request)
                result = await run_in_threadpool(self.handle, service, payload)
            except Exception as e:
                return error(e, self.name, start)
            service.metrics.observe(self.name, 200, time.perf_counter() - start)
            return result

    def add_flask_routes(self, app, service, read_body, error) -> None:
        import time

        from flask import jsonify, request

        def health():
            if not service.ready:
                return jsonify({"ready": False}), 503
            return jsonify({"ready": True})

        def predictions():
            start = time.perf_counter()
            try:
                service.authorize(request.headers.get("Authorization"))
                result = self.handle(service, read_body())
            except Exception as e:
                return error(e, self.name, start)
            service.metrics.observe(self.name, 200, time.perf_counter() - start)
            return jsonify(result)

        app.add_url_rule(self.health_route, f"{self.name}_health", health, methods=["GET"])
        app.add_url_rule(self.predict_route, f"{self.name}_predict", predictions, methods=["POST"])


class SageMaker(_OneRoute):
    name = "sagemaker"

    def port(self) -> int:
        return _env_port("SAGEMAKER_BIND_TO_PORT", 8080)

    def platform_specs(self) -> list[str]:
        return runs_in(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))


class Vertex(_OneRoute):
    name = "vertex"

    def __init__(self) -> None:
        self.health_route = os.environ.get("AIP_HEALTH_ROUTE", "/health")
        self.predict_route = os.environ.get("AIP_PREDICT_ROUTE", "/predict")
        for variable, route in (
            ("AIP_HEALTH_ROUTE", self.health_route),
            ("AIP_PREDICT_ROUTE", self.predict_route),
        ):
            if not route.startswith("/"):
                raise GenlabError(f"{variable} must be a path starting with /, got {route!r}")

    def port(self) -> int:
        return _env_port("AIP_HTTP_PORT", 8080)

    def platform_specs(self) -> list[str]:
        uri = os.environ.get("AIP_STORAGE_URI")
        if not uri:
            raise GenlabError("give a run directory or set AIP_STORAGE_URI (Vertex AI sets it)")
        return runs_in(uri)

    def handle(self, service: Service, payload: dict[str, Any]) -> dict[str, Any]:
        return predict(service, payload)


class Azure(_OneRoute):
    name = "azure"
    health_route = "/score/health"
    predict_route = "/score"

    def platform_specs(self) -> list[str]:
        return runs_in(_azure_model_dir())

    def handle(self, service: Service, payload: dict[str, Any]) -> dict[str, Any]:
        return azure_handle(service, payload)


def azure_handle(service: Service, payload: dict[str, Any]) -> dict[str, Any]:
    return predict(service, payload) if "instances" in payload else invoke(service, payload)


def _azure_model_dir() -> str:
    folder = os.environ.get("AZUREML_MODEL_DIR")
    if not folder:
        raise GenlabError("give a run directory or set AZUREML_MODEL_DIR (Azure ML sets it)")
    return folder


def get_contract(name: str) -> Contract:
    contracts = {"generic": Contract, "sagemaker": SageMaker, "vertex": Vertex, "azure": Azure}
    if name not in contracts:
        raise GenlabError(f"unknown contract {name!r}; known: {', '.join(CONTRACTS)}")
    return contracts[name]()


# --- Azure ML's score.py ----------------------------------------------------------------------
SCORE_PY = '''"""Azure ML scoring script for genlab runs (written by `genlab azure-score`).

Azure ML calls init() once, with AZUREML_MODEL_DIR pointing at the registered model (a genlab
run folder, or a folder of runs), then run(raw_data) per request: a JSON request object
({"model": NAME, ...SampleRequest or TextRequest fields}) or {"instances": [...]}.
Limits come from GENLAB_MAX_N, GENLAB_MAX_TOKENS and GENLAB_TIMEOUT_S when set.
"""

from genlab.serve.contracts import azure_init, azure_run

service = None


def init():
    global service
    service = azure_init()


def run(raw_data):
    return azure_run(service, raw_data)
'''


def limits_from_env():
    from genlab.serve.schemas import Limits

    values: dict[str, Any] = {}
    for variable, field, kind in (
        ("GENLAB_MAX_N", "max_n", int),
        ("GENLAB_MAX_TOKENS", "max_tokens", int),
        ("GENLAB_TIMEOUT_S", "timeout_s", float),
    ):
        if os.environ.get(variable):
            try:
                values[field] = kind(os.environ[variable])
            except ValueError:
                raise GenlabError(f"{variable} must be a number") from None
    return Limits(**values)


def azure_init() -> Service:
    return Service(runs_in(_azure_model_dir()), limits=limits_from_env())


def azure_run(service: Service, raw_data: Any):
    """A JSON string or bytes in, a dict out; a bad request answers with its status when
    Azure's AMLResponse is there, else with {"error": ...}."""
    import json

    try:
        payload = service.parse_body(
            raw_data.encode("utf-8") if isinstance(raw_data, str) else bytes(raw_data)
        )
        return azure_handle(service, payload)
    except ServeError as e:
        try:
            from azureml.contrib.services.aml_response import AMLResponse
        except ImportError:
            return {"error": e.message, "status": e.status}
        return AMLResponse(json.dumps({"error": e.message}), e.status)


def write_score_py(path: str | Path) -> Path:
    from genlab.fileio import atomic_write_text

    return atomic_write_text(Path(path), SCORE_PY)
