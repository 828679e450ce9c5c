"""schemathesis against the OpenAPI spec: generated requests (valid and invalid) never get a
5xx, and every answer is what the spec says (status, content type, body, headers such as a
405's Allow; invalid data refused), on the FastAPI app and, through the same spec, on the Flask
app. Left out: positive_data_acceptance, since a schema-valid body can still be refused by
design (a text request to an image model, or n over the server's --max-n)."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis import checks  # noqa: E402
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

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
    checks.unsupported_method,
    checks.missing_required_header,
]

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@schema.parametrize()
@SETTINGS
def test_fastapi_answers_as_the_spec_says(case):
    case.call_and_validate(checks=CHECKS)


@flask_schema.parametrize()
@SETTINGS
def test_flask_answers_as_the_spec_says(case):
    case.call_and_validate(checks=CHECKS)
