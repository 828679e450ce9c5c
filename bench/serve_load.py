"""Benchmark: a live `genlab serve` under load, with and without micro-batching.

    .venv/bin/python bench/serve_load.py
    .venv/bin/python bench/serve_load.py --run runs/demo-vae --requests 2000 --seconds 30

The models (`--models`, default the VAE of `make demo` and Glow, the slowest per sample) are in their default
configs for 28 x 28 images, with random weights unless `--run` names a trained run: the cost of
a request does not depend on the weights. A server is
started as a subprocess (uvicorn, one worker, 127.0.0.1) with micro-batching on (`--max-batch
64 --max-wait-ms 5`, the defaults) and, in the same run, off (`--max-batch 1`). An asyncio
load generator (a minimal keep-alive HTTP/1.1 client, in this process) keeps C requests in flight, each `{"n": 1, "seed": i}`
(one PNG back), until it has sent the requested number or the phase's time is up. Reported per
phase: requests, status counts (zero 5xx is required), requests/s, p50/p99 latency, and the mean
batch size of the phase from the server's /metrics. Phases: batching at 32 clients, batching at 64 clients
with `--big` requests (10,000 by default), no batching at 32 clients. Writes JSON (`--out`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json

REPO = Path(__file__).resolve().parents[1]


def random_run(name: str, folder: Path) -> Path:
    """A run folder holding model `name` in its default config for 1 x 28 x 28 images, with
    random weights."""
    import torch

    from genlab.config import to_dict
    from genlab.fileio import atomic_write_text
    from genlab.registry import model_class
    from genlab.training.checkpoint import save_weights

    cls = model_class(name)
    torch.manual_seed(0)
    model = cls(cls.Config(data_shape=(1, 28, 28)))
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model": name, "model_config": to_dict(model.config)}
    atomic_write_text(folder / "config.json", json.dumps(config, indent=2))
    save_weights(folder / "model.safetensors", model.state_dict())
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, run: Path, extra: list[str], log: Path, threads: int | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        genlab = Path(sys.executable).with_name("genlab")
        args = [str(genlab), "serve", f"model={run}", "--port", str(self.port), *extra]
        self._log = open(log, "w")  # noqa: SIM115 (closed in stop)
        env = dict(os.environ)
        if threads:  # torch's intra-op threads in the server
            env["OMP_NUM_THREADS"] = str(threads)
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout: float = 120) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the server did not become ready")

    def batch_totals(self) -> tuple[float, float]:
        """(samples, forward passes) so far, from the server's batch-size histogram."""
        import httpx

        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        values = {"genlab_batch_size_sum": 0.0, "genlab_batch_size_count": 0.0}
        for line in text.splitlines():
            for key in values:
                if line.startswith(key + "{"):
                    values[key] = float(line.rsplit(" ", 1)[1])
        return values["genlab_batch_size_sum"], values["genlab_batch_size_count"]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


class Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: the load generator has to be
    much cheaper than the server it measures (httpx's client cost more per request than the
    server on this 2-core machine, so it measured itself)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        payload = await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def load(url: str, clients: int, requests: int, seconds: float, first_seed: int) -> dict:
    """`clients` connections send requests until `requests` are done or `seconds` have
    passed; each keeps one request in flight."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    sent = 0
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal sent, errors
        connection = Connection(host, int(port))
        try:
            while sent < requests and time.monotonic() < deadline:
                seed = first_seed + sent
                sent += 1
                body = json.dumps({"n": 1, "seed": seed}).encode()
                start = time.perf_counter()
                try:
                    status, _ = await connection.post("/v1/models/model/generate", body)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    errors += 1
                    await connection.close()
                    continue
                latencies.append(time.perf_counter() - start)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
        finally:
            await connection.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - start
    latencies.sort()

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    done = len(latencies)
    return {
        "clients": clients,
        "requests": done,
        "statuses": statuses,
        "server_errors": sum(v for k, v in statuses.items() if k.startswith("5")),
        "connection_errors": errors,
        "seconds": round(wall, 2),
        "requests_per_second": round(done / wall, 1),
        "p50_ms": round(quantile(0.50), 2),
        "p99_ms": round(quantile(0.99), 2),
    }


def phase(name: str, server: Server, clients: int, requests: int, seconds: float) -> dict:
    asyncio.run(load(server.url, clients, min(200, requests), 30, 10**6))  # warm-up
    samples, passes = server.batch_totals()
    result = asyncio.run(load(server.url, clients, requests, seconds, 0))
    result["phase"] = name
    samples_after, passes_after = server.batch_totals()
    # samples per forward pass in this phase only (warm-up and earlier phases left out)
    result["mean_batch"] = round((samples_after - samples) / max(passes_after - passes, 1), 2)
    print(
        f"{name:<22} {clients:>3} clients  {result['requests']:>6} requests in "
        f"{result['seconds']:6.1f} s  {result['requests_per_second']:7.1f} req/s  "
        f"p50 {result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms  "
        f"5xx {result['server_errors']}  errors {result['connection_errors']}  "
        f"mean batch {result['mean_batch']:.1f}",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vae,glow", help="registered image models")
    parser.add_argument("--run", default=None, help="a trained run instead (one model)")
    parser.add_argument("--requests", type=int, default=3000, help="per 32-client phase")
    parser.add_argument("--big", type=int, default=10_000, help="requests at 64 clients")
    parser.add_argument("--seconds", type=float, default=120, help="time limit per phase")
    parser.add_argument("--threads", type=int, default=None, help="server's torch threads")
    parser.add_argument("--out", default="bench/results/serve_load.json")
    args = parser.parse_args(argv)

    models = [args.run] if args.run else args.models.split(",")
    results = []
    with tempfile.TemporaryDirectory(prefix="genlab-serve-bench-") as tmp:
        for name in models:
            run = Path(name) if args.run else random_run(name, Path(tmp) / name)
            print(f"{name}:", flush=True)
            rows = []
            for label, extra in (("batching", []), ("no batching", ["--max-batch", "1"])):
                log = Path(tmp) / f"server-{name}-{len(rows)}.log"
                server = Server(run, extra, log, args.threads)
                try:
                    server.wait_ready()
                    rows.append(phase(label, server, 32, args.requests, args.seconds))
                    if label == "batching":
                        rows.append(phase("batching, 64 clients", server, 64, args.big, 600))
                finally:
                    server.stop()
            batched = next(r for r in rows if r["phase"] == "batching")
            alone = next(r for r in rows if r["phase"] == "no batching")
            ratio = batched["requests_per_second"] / alone["requests_per_second"]
            print(f"{name}: throughput with micro-batching at 32 clients: {ratio:.1f}x", flush=True)
            results.append(
                {
                    "model": name
                    if args.run
                    else f"{name}, default config, 1 x 28 x 28, random weights",
                    "phases": rows,
                    "throughput_ratio_32_clients": round(ratio, 2),
                    "zero_5xx": all(r["server_errors"] == 0 for r in rows),
                }
            )
    result = {
        "benchmark": "serve_load",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {**machine(), "load_average_at_end": os.getloadavg()[0]},
        "results": results,
    }
    print(f"wrote {write_json(args.out, result)}")
    return result


if __name__ == "__main__":
    main()
