"""Fixtures for the data tests: a local HTTP server (never the internet) and the shared data dir."""

from __future__ import annotations

import os
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Route:
    body: bytes
    status: int = 200
    truncate: bool = False  # declare a Content-Length larger than the body, then hang up


@dataclass
class LocalServer:
    """Serves `routes` on 127.0.0.1; `hits` counts requests per path."""

    base: str
    routes: dict[str, Route] = field(default_factory=dict)
    hits: Counter = field(default_factory=Counter)

    def serve(self, path: str, body: bytes, *, status: int = 200, truncate: bool = False) -> str:
        self.routes[path] = Route(body, status, truncate)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


def _handler(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.hits[self.path] += 1
            route = server.routes.get(self.path)
            if route is None or route.status == 404:
                self.send_error(404)
                return
            self.send_response(route.status)
            declared = len(route.body) + (1000 if route.truncate else 0)
            self.send_header("Content-Length", str(declared))
            self.end_headers()
            self.wfile.write(route.body)
            if route.truncate:
                self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

    return Handler


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    local = LocalServer(base="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(local))
    httpd.daemon_threads = True
    local.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield local
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.bin"


@pytest.fixture
def shared_data_dir() -> Path:
    """The shared, read-only data folder: $GENLAB_DATA_DIR, else ../shared/data from the repo."""
    configured = os.environ.get("GENLAB_DATA_DIR")
    folder = Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"
    if not (folder / "tinyshakespeare.txt").is_file():
        pytest.skip(
            f"tinyshakespeare.txt is not in {folder} (set GENLAB_DATA_DIR to a folder with it)"
        )
    return folder
