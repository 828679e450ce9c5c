"""`genlab serve` as a real process: uvicorn with several workers, Flask under gunicorn, with
torch's default threads, and clients whose request body stalls half-way."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess

import pytest
from serve_runs import run
from test_docker import container_env, free_port, http, serving

pytestmark = pytest.mark.slow

LIMIT_S = 2  # the servers' --timeout in the stalled-body test
SLACK_S = 60  # how much longer than LIMIT_S a client waits for the answer (busy machines)


def default_threads_env() -> dict[str, str]:
    """The tests' server environment without its one-thread setting: torch starts its OpenMP
    pool (one thread per core) as it does for a user. A gunicorn parent that had run a parallel
    op before forking left its workers hanging on a futex exactly then (OMP_NUM_THREADS=1 hid
    it)."""
    env = container_env()
    env.pop("OMP_NUM_THREADS")
    return env


@pytest.mark.parametrize("flask", [False, True], ids=["uvicorn", "gunicorn"])
def test_two_worker_processes_serve_the_same_answers(tmp_path, flask):
    """With a model whose loading runs a parallel copy (as any real model's does)."""
    port = free_port()
    argv = [str(a) for a in ["genlab", "serve", f"art={run('dcgan-wide')}", "--port", port]]
    argv += ["--workers", "2", *(["--flask"] if flask else [])]
    with serving(argv, port, default_threads_env(), tmp_path / "server.log") as server:
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
    assert server.process.returncode in (0, -signal.SIGTERM), log
    assert "Traceback" not in log and "WORKER TIMEOUT" not in log, log


def stalled_request(port: int) -> socket.socket:
    """A POST announcing 100 body bytes that sends 10 and then nothing."""
    connection = socket.create_connection(("127.0.0.1", port))
    connection.sendall(
        b"POST /v1/models/art/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n" + b'{"seed": 1'
    )
    return connection


def read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    connection.settimeout(LIMIT_S + SLACK_S)
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except TimeoutError:
        pytest.fail(f"the server neither answered nor closed; it sent {received!r}")
    finally:
        connection.close()
    return received


@pytest.mark.parametrize("flask", [False, True], ids=["uvicorn", "gunicorn"])
def test_a_stalled_request_body_gets_408_and_the_connection_closes(tmp_path, flask):
    """More stalled clients (20) than a gunicorn worker has threads (16): each gets its 408
    once the server's own time limit has passed, and then the server serves again."""
    port = free_port()
    argv = ["genlab", "serve", f"art={run('dcgan')}", "--port", str(port)]
    argv += ["--timeout", str(LIMIT_S), *(["--flask"] if flask else [])]
    with (
        serving(argv, port, default_threads_env(), tmp_path / "server.log") as server,
        contextlib.ExitStack() as open_sockets,
    ):
        stalled = [open_sockets.enter_context(stalled_request(port)) for _ in range(20)]
        for connection in stalled:
            answer = read_until_closed(connection)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408"), answer  # and closed: read_until_closed
            assert json.loads(body) == {
                "error": f"the request body did not arrive within the {LIMIT_S} s limit"
            }
        status, body = http("POST", f"{server.url}/v1/models/art/generate", {"seed": 1})
        assert status == 200, body
        status, body = http("GET", f"{server.url}/metrics")
        assert 'genlab_requests_total{route="generate",status="408"} 20.0' in body.decode()
    assert "Traceback" not in server.log.read_text()


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_a_port_out_of_range_is_one_line_and_exit_2(port):
    result = subprocess.run(
        ["genlab", "serve", str(run("dcgan")), "--port", port],
        env=container_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result
    assert result.stderr == f"error: --port must be a port number from 1 to 65535, got {port}\n"
