"""bench/serve_load.py's soak mode, a few seconds of it, so that it cannot rot: against a real
`genlab serve` with tiny runs it passes; against a server that answers 500 it fails."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from serve_runs import run

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SOAK_MINUTES = "0.05"  # 3 s: the first request of every kind is sent at once, whatever the load


def soak(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "bench" / "serve_load.py"), "--soak", SOAK_MINUTES]
    return subprocess.run(
        [*command, "--clients", "4", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )


def test_a_soak_of_a_real_server_passes_and_reports_every_kind(tmp_path):
    out = tmp_path / "soak.json"
    result = soak(
        "--image-run", str(run("dcgan")), "--text-run", str(run("gpt")), "--out", str(out)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: zero 5xx" in result.stdout
    report = json.loads(out.read_text())["result"]
    assert report["ok"] and report["failures"] == {}
    kinds = report["kinds"]
    assert set(kinds) == {"image", "text", "text stream", "invalid"}
    for kind, row in kinds.items():
        assert row["requests"] >= 1 and row["unexpected_status"] == 0, (kind, row)
        assert row["p50_ms"] <= row["p99_ms"]
    assert set(kinds["image"]["statuses"]) == {"200"}
    assert all(status.startswith("4") for status in kinds["invalid"]["statuses"])
    assert report["server_5xx_from_metrics"] == 0
    for kind in kinds:  # the table names every kind
        assert f"\n{kind} " in result.stdout


class AlwaysFails(BaseHTTPRequestHandler):
    """A server whose every generate request is a 500 (and which counts them as such)."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the load generator expects
    failed = 0
    lock = threading.Lock()  # one thread per connection

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with AlwaysFails.lock:
            AlwaysFails.failed += 1
        self.answer(500, b'{"error": "broken"}', "application/json")

    def do_GET(self) -> None:  # /metrics
        count = f'genlab_requests_total{{route="generate",status="500"}} {AlwaysFails.failed}\n'
        self.answer(200, count.encode(), "text/plain")

    def answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@contextmanager
def failing_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), AlwaysFails)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_soak_with_5xx_exits_non_zero(tmp_path):
    out = tmp_path / "soak.json"
    with failing_server() as url:
        result = soak("--url", url, "--out", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED" in result.stdout
    report = json.loads(out.read_text())["result"]
    assert not report["ok"]
    assert report["failures"]["5xx"] == report["requests"] > 0
    assert report["failures"]["5xx counted by the server"] == report["requests"]
