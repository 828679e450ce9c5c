"""`genlab serve` as a real process: uvicorn with several workers, Flask under gunicorn."""

from __future__ import annotations

import json
import signal

import pytest
from serve_runs import run
from test_docker import container_env, free_port, http, serving

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("flask", [False, True], ids=["uvicorn", "gunicorn"])
def test_two_worker_processes_serve_the_same_answers(tmp_path, flask):
    port = free_port()
    argv = [str(a) for a in ["genlab", "serve", f"art={run('dcgan')}", "--port", port]]
    argv += ["--workers", "2", *(["--flask"] if flask else [])]
    with serving(argv, port, container_env(), tmp_path / "server.log") as server:
        answers = []
        for _ in range(4):  # the requests spread over both workers
            status, body = http("POST", f"{server.url}/v1/models/art/generate", {"seed": 5})
            assert status == 200, body
            answers.append(json.loads(body)["images"])
        assert all(a == answers[0] for a in answers)
        status, body = http("POST", f"{server.url}/v1/models/art/generate", {"n": -1})
        assert status == 422 and "n:" in json.loads(body)["error"]
        status, _ = http("GET", f"{server.url}/metrics")
        assert status == 200
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)
    log = server.log.read_text()
    assert "Traceback" not in log, log
