"""schemathesis against the OpenAPI spec: generated requests (valid and invalid) never get a
5xx, on the FastAPI app and, through the same spec, on the Flask app."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from serve_runs import run  # noqa: E402

from genlab.serve.schemas import Limits  # noqa: E402
from genlab.serve.service import Service  # noqa: E402

# small limits keep generated requests cheap: a fuzzer asks for the most it may
LIMITS = Limits(max_n=4, max_tokens=8, max_prompt_chars=200, timeout_s=20)
SERVICE = Service(
    [f"dcgan={run('dcgan')}", f"gpt={run('gpt')}", f"realnvp={run('realnvp')}"], limits=LIMITS
)


def _app():
    from genlab.serve.fastapi_app import create_app

    return create_app(SERVICE)


def _flask():
    from genlab.serve.flask_app import create_app

    return create_app(SERVICE)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())
flask_schema = schemathesis.openapi.from_wsgi("/openapi.json", _flask())

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@schema.parametrize()
@SETTINGS
def test_no_request_gets_a_server_error_from_fastapi(case):
    case.call_and_validate(checks=[not_a_server_error])


@flask_schema.parametrize()
@SETTINGS
def test_no_request_gets_a_server_error_from_flask(case):
    case.call_and_validate(checks=[not_a_server_error])
