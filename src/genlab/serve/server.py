"""`genlab serve`: build the service for a contract and run it under uvicorn (FastAPI) or
gunicorn (Flask).

Models are loaded before the server listens, so a bad run (a corrupt checkpoint, a wrong path)
is a one-line error and exit code 2, and /readyz is true from the first request on. With
`workers > 1` every worker process loads its own copy (the settings travel in the environment
variable GENLAB_SERVE_SETTINGS); the models are loaded once first to fail fast.

gunicorn forks its workers from the parent, and a forked child cannot use an OpenMP thread pool
that its parent started (libgomp's pool does not survive fork: the child's first parallel torch
op, e.g. the copy in `load_state_dict`, waits forever on a futex, and since it waits in C, the
worker ignores SIGTERM too). Any torch op on a tensor over ~32k elements starts that pool, so the
gunicorn parent must run none: it checks the models in a fresh (spawned) process instead and
only imports torch itself. uvicorn's workers are spawned, not forked, so its parent may load.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from genlab.errors import GenlabError
from genlab.serve.contracts import get_contract
from genlab.serve.schemas import Limits
from genlab.serve.service import Service

SETTINGS_ENV = "GENLAB_SERVE_SETTINGS"


@dataclasses.dataclass
class Settings:
    specs: list[str]
    contract: str = "generic"
    api_key_env: str | None = None
    limits: dict[str, Any] = dataclasses.field(default_factory=dict)
    device: str = "cpu"

    def api_key(self) -> str | None:
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise GenlabError(f"--api-key-env {self.api_key_env}: that variable is unset or empty")
        return key

    def service(self) -> Service:
        return Service(
            self.specs, limits=Limits(**self.limits), api_key=self.api_key(), device=self.device
        )


def build_app(settings: Settings, *, flask: bool = False, service: Service | None = None):
    contract = get_contract(settings.contract)
    service = service or settings.service()
    if flask:
        from genlab.serve.flask_app import create_app as create_flask_app

        return create_flask_app(service, contract=contract)
    from genlab.serve.fastapi_app import create_app

    return create_app(service, contract=contract)


def _settings_from_env() -> Settings:
    return Settings(**json.loads(os.environ[SETTINGS_ENV]))


def fastapi_from_env():
    """uvicorn's factory in each worker process."""
    return build_app(_settings_from_env())


def flask_from_env():
    return build_app(_settings_from_env(), flask=True)


def check_port(port: int) -> int:
    """1..65535; a one-line error otherwise (the socket layer would wrap 99999 round silently)."""
    if not 1 <= port <= 65535:
        raise GenlabError(f"--port must be a port number from 1 to 65535, got {port}")
    return port


def _load_and_close(settings: Settings) -> None:
    settings.service().close()


def check_in_fresh_process(settings: Settings) -> None:
    """Load every model once in a spawned process (see the module docstring: the caller is
    about to fork); its GenlabError, e.g. a corrupt checkpoint, is raised here."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        try:
            pool.submit(_load_and_close, settings).result()
        except BrokenProcessPool:
            raise GenlabError("loading the models killed the process (out of memory?)") from None


def serve(
    runs: list[str],
    *,
    contract: str = "generic",
    host: str = "127.0.0.1",
    port: int | None = None,
    api_key_env: str | None = None,
    workers: int = 1,
    flask: bool = False,
    limits: Limits | None = None,
    device: str = "cpu",
    log_level: str = "info",
) -> None:
    chosen = get_contract(contract)
    if workers < 1:
        raise GenlabError(f"--workers must be >= 1, got {workers}")
    settings = Settings(
        chosen.model_specs(list(runs)),
        contract,
        api_key_env,
        dataclasses.asdict(limits or Limits()),
        device,
    )
    port = check_port(chosen.port() if port is None else port)
    if flask:
        check_in_fresh_process(settings)  # a bad model fails here, before listening
        _gunicorn(settings, host, port, workers, log_level)
        return
    import uvicorn

    service = settings.service()  # loads every model: a bad one fails here, before listening

    if workers == 1:
        uvicorn.run(build_app(settings, service=service), host=host, port=port, log_level=log_level)
        return
    service.close()
    os.environ[SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings))
    uvicorn.run(
        "genlab.serve.server:fastapi_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )


def _gunicorn(settings: Settings, host: str, port: int, workers: int, log_level: str) -> None:
    """Flask under gunicorn; each worker loads the models after the fork (`load`)."""
    from gunicorn.app.base import BaseApplication

    os.environ[SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings))

    class Application(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 16)  # concurrent requests per worker: batches can form
            self.cfg.set("timeout", int(settings.limits.get("timeout_s", 30)) + 30)
            self.cfg.set("loglevel", log_level)

        def load(self):
            return flask_from_env()

    Application().run()
