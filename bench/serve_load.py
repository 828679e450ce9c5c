"""Benchmark: a live `genlab serve` under load, with and without micro-batching; or a soak.

    .venv/bin/python bench/serve_load.py
    .venv/bin/python bench/serve_load.py --run runs/demo-vae --requests 2000 --seconds 30
    .venv/bin/python bench/serve_load.py --soak 2            # 2 minutes of mixed load

The models (`--models`, default the VAE of `make demo` and Glow, the slowest per sample) are in
their default configs for 28 x 28 images, with random weights unless `--run` names a trained run:
the cost of a request does not depend on the weights. A server is started as a subprocess
(uvicorn, one worker, 127.0.0.1) with micro-batching on (`--max-batch 64 --max-wait-ms 5`, the
defaults) and, in the same run, off (`--max-batch 1`). An asyncio load generator (a minimal
keep-alive HTTP/1.1 client, in this process) keeps C requests in flight, each
`{"n": 1, "seed": i}` (one PNG back), until it has sent the requested number or the phase's time
is up. Reported per phase: requests, status counts (zero 5xx is required), requests/s, p50/p99
latency, and the mean batch size of the phase from the server's /metrics. Phases: batching at
32 clients, batching at 64 clients with `--big` requests (10,000 by default), no batching at 32
clients. Writes JSON (`--out`).

`--soak MINUTES`: one server holding an image model and a language model (`--image-run`,
`--text-run`; default the VAE and GPT in their default configs with random weights; `--flask`,
`--workers` as for `genlab serve`; or `--url` of a running server) gets `--clients` (8)
connections sending, in turn, image samples (`{"n": 4}`), whole text and streamed text (32
tokens), and invalid requests (bad fields, broken, empty and too deeply nested JSON, an unknown
model), each of which must get its own 4xx. Reported per kind: requests, statuses, p50/p99
latency; and the server's memory at the start and end. The exit status is 1 unless there was no
5xx (as answered and as counted in the server's /metrics), no connection error, every stream
ended with its "done" event and every request got the status it should. Writes JSON (`--out`,
default bench/results/serve_soak.json).
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
    def __init__(self, specs: list[str], extra: list[str], log: Path, threads: int | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        genlab = Path(sys.executable).with_name("genlab")
        args = [str(genlab), "serve", *specs, "--port", str(self.port), *extra]
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
        length, close, chunked = 0, False, False
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
            elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True  # a stream of server-sent events
        payload = await self._chunks() if chunked else await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, payload

    async def _chunks(self) -> bytes:
        assert self.reader is not None
        parts = []
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)  # the CRLF after each chunk
        await self.reader.readuntil(b"\r\n")  # the end (no trailers)
        return b"".join(parts)

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


# --- soak: a mixed load for minutes -------------------------------------------------------------
SOAK_KINDS = ("image", "text", "text stream", "invalid")
PROMPT = "ROMEO: "
INVALID = [  # (model, body, the status the server must answer)
    ("image", b'{"n": -1}', 422),
    ("image", b"{not json", 400),
    ("image", b"", 400),
    ("image", b"[" * 5000 + b"]" * 5000, 400),  # nested deeper than json's recursion limit
    ("image", b'{"n": 1, "colour": "red"}', 422),
    ("text", b'{"prompt": "hi", "temperature": 1e-300}', 422),
    ("nope", b"{}", 404),
]


def soak_request(kind: str, i: int, image: str, text: str) -> tuple[str, bytes, int]:
    """Request number `i` of `kind`: (path, body, the status it must get)."""
    generate = "/v1/models/{}/generate"
    if kind == "image":
        return generate.format(image), json.dumps({"n": 4, "seed": i}).encode(), 200
    if kind in ("text", "text stream"):
        body = {"prompt": PROMPT, "max_new_tokens": 32, "seed": i, "stream": kind != "text"}
        return generate.format(text), json.dumps(body).encode(), 200
    model, body, status = INVALID[i % len(INVALID)]
    return generate.format({"image": image, "text": text}.get(model, model)), body, status


async def soak_load(url: str, clients: int, seconds: float, image: str, text: str) -> dict:
    """`clients` connections send the kinds of request in turn until `seconds` have passed;
    per kind: latencies, statuses and answers that were not the expected status."""
    host, port = url.removeprefix("http://").split(":")
    per_kind = {kind: {"latencies": [], "statuses": {}, "unexpected": 0} for kind in SOAK_KINDS}
    counts = {"sent": 0, "connection_errors": 0, "broken_streams": 0}
    deadline = time.monotonic() + seconds

    async def client() -> None:
        connection = Connection(host, int(port))
        try:
            while time.monotonic() < deadline:
                i = counts["sent"]
                counts["sent"] += 1
                kind = SOAK_KINDS[i % len(SOAK_KINDS)]
                path, body, expected = soak_request(kind, i, image, text)
                start = time.perf_counter()
                try:
                    status, payload = await connection.post(path, body)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    counts["connection_errors"] += 1
                    await connection.close()
                    continue
                stats = per_kind[kind]
                stats["latencies"].append(time.perf_counter() - start)
                stats["statuses"][str(status)] = stats["statuses"].get(str(status), 0) + 1
                stats["unexpected"] += status != expected
                if kind == "text stream" and status == 200 and b"event: done" not in payload:
                    counts["broken_streams"] += 1  # ended without its "done" event
        finally:
            await connection.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - start
    kinds = {}
    for kind, stats in per_kind.items():
        latencies = sorted(stats["latencies"])

        def quantile(q: float, latencies=latencies) -> float | None:
            if not latencies:
                return None
            return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

        kinds[kind] = {
            "requests": len(latencies),
            "statuses": stats["statuses"],
            "server_errors": sum(v for k, v in stats["statuses"].items() if k.startswith("5")),
            "unexpected_status": stats["unexpected"],
            "p50_ms": quantile(0.50),
            "p99_ms": quantile(0.99),
        }
    done = sum(k["requests"] for k in kinds.values())
    return {
        "clients": clients,
        "seconds": round(wall, 2),
        "requests": done,
        "requests_per_second": round(done / wall, 1),
        "connection_errors": counts["connection_errors"],
        "broken_streams": counts["broken_streams"],
        "kinds": kinds,
    }


def tree_rss_mb(pid: int) -> float | None:
    """Resident memory of a process and its children (Linux /proc); None elsewhere."""
    total, stack = 0, [pid]
    try:
        while stack:
            current = stack.pop()
            status = Path(f"/proc/{current}/status").read_text()
            total += int(status.split("VmRSS:")[1].split()[0])  # kB
            stack += [
                int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()
            ]
    except (OSError, IndexError, ValueError):
        return None
    return round(total / 1024, 1)


def server_5xx(url: str) -> float:
    """5xx answers the server itself counted (its /metrics), on every route."""
    import httpx

    total = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("genlab_requests_total{") and 'status="5' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def random_text_run(name: str, folder: Path) -> Path:
    """A run folder holding language model `name` in its default config, random weights and a
    character tokenizer over printable ASCII (any English prompt encodes)."""
    import string

    import torch

    from genlab.config import to_dict
    from genlab.fileio import atomic_write_text
    from genlab.registry import model_class
    from genlab.tokenizers import CharTokenizer, save_tokenizer
    from genlab.training.checkpoint import save_weights

    tokenizer = CharTokenizer(string.printable)
    cls = model_class(name)
    torch.manual_seed(0)
    model = cls(cls.Config(vocab_size=tokenizer.vocab_size))
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model": name, "model_config": to_dict(model.config)}
    atomic_write_text(folder / "config.json", json.dumps(config, indent=2))
    save_weights(folder / "model.safetensors", model.state_dict())
    save_tokenizer(tokenizer, folder / "tokenizer.json")
    return folder


def soak(args: argparse.Namespace, tmp: Path) -> dict:
    """One server (or `--url`) under the mixed load for `--soak` minutes."""
    server = None
    url = args.url
    if url is None:
        image_run = Path(args.image_run) if args.image_run else random_run("vae", tmp / "vae")
        text_run = Path(args.text_run) if args.text_run else random_text_run("gpt", tmp / "gpt")
        extra = ["--workers", str(args.workers), *(["--flask"] if args.flask else [])]
        specs = [f"image={image_run}", f"text={text_run}"]
        server = Server(specs, extra, tmp / "server-soak.log", args.threads)
        url = server.url
    try:
        if server is not None:
            server.wait_ready()
        rss_start = tree_rss_mb(server.process.pid) if server else None
        result = asyncio.run(
            soak_load(url, args.clients, args.soak * 60, args.image_model, args.text_model)
        )
        result["server_5xx_from_metrics"] = server_5xx(url)
        result["server_rss_mb"] = {
            "start": rss_start,
            "end": tree_rss_mb(server.process.pid) if server else None,
        }
    finally:
        if server is not None:
            server.stop()
    result["server"] = (
        url
        if server is None
        else f"genlab serve, {'gunicorn' if args.flask else 'uvicorn'}, "
        f"{args.workers} worker(s); image: {args.image_run or 'vae default config, random weights'}"
        f"; text: {args.text_run or 'gpt default config, random weights, char tokenizer'}"
    )
    failures = {
        "5xx": sum(k["server_errors"] for k in result["kinds"].values()),
        "5xx counted by the server": result["server_5xx_from_metrics"],
        "connection errors": result["connection_errors"],
        "streams without their done event": result["broken_streams"],
        "answers with another status than expected": sum(
            k["unexpected_status"] for k in result["kinds"].values()
        ),
    }
    result["failures"] = {k: v for k, v in failures.items() if v}
    result["ok"] = not result["failures"]
    print_soak(result)
    return result


def print_soak(result: dict) -> None:
    print(
        f"soak: {result['requests']} requests in {result['seconds']:.1f} s "
        f"({result['requests_per_second']:.1f} req/s) from {result['clients']} clients",
        flush=True,
    )
    print(f"{'kind':<12} {'requests':>8} {'p50 ms':>9} {'p99 ms':>9} {'5xx':>5}  statuses")
    for kind, row in result["kinds"].items():
        p50 = "-" if row["p50_ms"] is None else f"{row['p50_ms']:.1f}"
        p99 = "-" if row["p99_ms"] is None else f"{row['p99_ms']:.1f}"
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(row["statuses"].items()))
        errors = row["server_errors"]
        print(f"{kind:<12} {row['requests']:>8} {p50:>9} {p99:>9} {errors:>5}  {statuses}")
    rss = result["server_rss_mb"]
    if rss["start"] is not None:
        print(f"server memory (RSS, all processes): {rss['start']} MB -> {rss['end']} MB")
    verdict = "ok: zero 5xx" if result["ok"] else f"FAILED: {result['failures']}"
    print(verdict, flush=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vae,glow", help="registered image models")
    parser.add_argument("--run", default=None, help="a trained run instead (one model)")
    parser.add_argument("--requests", type=int, default=3000, help="per 32-client phase")
    parser.add_argument("--big", type=int, default=10_000, help="requests at 64 clients")
    parser.add_argument("--seconds", type=float, default=120, help="time limit per phase")
    parser.add_argument("--threads", type=int, default=None, help="server's torch threads")
    parser.add_argument(
        "--out",
        default=None,
        help="default bench/results/serve_load.json, with --soak bench/results/serve_soak.json",
    )
    soaking = parser.add_argument_group("soak: a mixed load (--soak MINUTES)")
    soaking.add_argument("--soak", type=float, default=None, help="minutes of mixed load")
    soaking.add_argument("--clients", type=int, default=8, help="concurrent clients")
    soaking.add_argument("--image-run", default=None, help="default: the VAE, random weights")
    soaking.add_argument("--text-run", default=None, help="default: GPT, random weights")
    soaking.add_argument("--flask", action="store_true", help="Flask under gunicorn")
    soaking.add_argument("--workers", type=int, default=1, help="server processes")
    soaking.add_argument("--url", default=None, help="soak this running server instead")
    soaking.add_argument("--image-model", default="image", help="its image model's name")
    soaking.add_argument("--text-model", default="text", help="its language model's name")
    args = parser.parse_args(argv)
    if args.soak is not None:
        with tempfile.TemporaryDirectory(prefix="genlab-serve-soak-") as tmp:
            result = soak(args, Path(tmp))
        out = args.out or "bench/results/serve_soak.json"
        payload = {
            "benchmark": "serve_soak",
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": {**machine(), "load_average_at_end": os.getloadavg()[0]},
            "result": result,
        }
        print(f"wrote {write_json(out, payload)}")
        return payload
    args.out = args.out or "bench/results/serve_load.json"

    models = [args.run] if args.run else args.models.split(",")
    results = []
    with tempfile.TemporaryDirectory(prefix="genlab-serve-bench-") as tmp:
        for name in models:
            run = Path(name) if args.run else random_run(name, Path(tmp) / name)
            print(f"{name}:", flush=True)
            rows = []
            for label, extra in (("batching", []), ("no batching", ["--max-batch", "1"])):
                log = Path(tmp) / f"server-{name}-{len(rows)}.log"
                server = Server([f"model={run}"], extra, log, args.threads)
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


def succeeded(payload: dict) -> bool:
    """Zero 5xx in every phase (the load mode); the soak's own verdict (--soak)."""
    if "result" in payload:
        return payload["result"]["ok"]
    return all(r["zero_5xx"] for r in payload["results"])


if __name__ == "__main__":
    sys.exit(0 if succeeded(main()) else 1)
