"""The container files, checked without Docker.

Dockerfile and docker/gpu.Dockerfile are parsed (continuations joined, comments dropped, as
Docker does): pinned base images, a non-root user, `ENTRYPOINT ["genlab"]` in exec form, a
health check, COPY sources that exist and that .dockerignore lets through. The default command
is then run as the image would run it (`genlab <CMD>`, with a tiny run in place of /models), and
so is SageMaker's `docker run IMAGE serve` (no run: the model folder comes from SM_MODEL_DIR);
the images' HEALTHCHECK command itself probes those servers. docker-compose.yml is read with
yaml.safe_load.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from serve_runs import run as tiny_run

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = {"cpu": REPO / "Dockerfile", "gpu": REPO / "docker" / "gpu.Dockerfile"}
MODELS = "/models"  # where the images' default command expects the run
BIN = Path(sys.executable).parent  # the venv's bin: genlab and python (/opt/venv/bin in images)
PLATFORM_VARIABLES = (
    "GENLAB_CONTRACT",
    "SM_MODEL_DIR",
    "SAGEMAKER_BIND_TO_PORT",
    "AIP_",
    "AZUREML_",
)
READY_TIMEOUT_S = 60.0


# --- parsing ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def parse_dockerfile(path: Path) -> list[Instruction]:
    """The instructions, with `\\` continuations joined; blank and comment lines (also inside a
    continued instruction) are skipped, as Docker does."""
    instructions: list[Instruction] = []
    current: str | None = None
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if current is None:
            current, start, raw = "", number, raw.lstrip()
        body = raw.rstrip()
        if body.endswith("\\"):
            current += body[:-1]
            continue
        keyword, _, args = (current + body).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        current = None
    assert current is None, f"{path.name}: the last instruction ends with a continuation"
    return instructions


def exec_form(args: str) -> list[str] | None:
    """A JSON-array (exec form) argument list, or None for the shell form."""
    if not args.startswith("["):
        return None
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def split_flags(args: str) -> tuple[dict[str, str], str]:
    """Leading `--name=value` flags (FROM --platform, COPY --from, HEALTHCHECK --interval)."""
    flags = {}
    while args.startswith("--"):
        flag, _, args = args.partition(" ")
        name, _, value = flag[2:].partition("=")
        flags[name] = value
        args = args.lstrip()
    return flags, args


def instructions(name: str, keyword: str) -> list[Instruction]:
    return [i for i in parse_dockerfile(DOCKERFILES[name]) if i.keyword == keyword]


def final_stage(name: str) -> list[Instruction]:
    parsed = parse_dockerfile(DOCKERFILES[name])
    last_from = max(n for n, i in enumerate(parsed) if i.keyword == "FROM")
    return parsed[last_from:]


def last(name: str, keyword: str) -> Instruction:
    found = [i for i in final_stage(name) if i.keyword == keyword]
    assert found, f"{DOCKERFILES[name].name}: no {keyword} in the final stage"
    return found[-1]


def arg_defaults(name: str) -> dict[str, str]:
    defaults = {}
    for instruction in instructions(name, "ARG"):
        key, sep, value = instruction.args.partition("=")
        if sep:
            defaults[key.strip()] = value.strip().strip('"')
    return defaults


def entrypoint(name: str) -> list[str]:
    value = exec_form(last(name, "ENTRYPOINT").args)
    assert value is not None, "ENTRYPOINT must be in exec form (a JSON array)"
    return value


def default_cmd(name: str) -> list[str]:
    value = exec_form(last(name, "CMD").args)
    assert value is not None, "CMD must be in exec form (a JSON array)"
    return value


def healthcheck_command(name: str) -> list[str]:
    """The HEALTHCHECK's CMD as argv: a shell-form command runs under /bin/sh -c."""
    _, rest = split_flags(last(name, "HEALTHCHECK").args)
    keyword, _, command = rest.partition(" ")
    assert keyword.upper() == "CMD", f"HEALTHCHECK must run a command, got {rest[:40]!r}"
    return exec_form(command.strip()) or ["/bin/sh", "-c", command.strip()]


def option(args: list[str], name: str) -> str:
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


def with_option(args: list[str], name: str, value: str) -> list[str]:
    out = list(args)
    out[out.index(name) + 1] = value
    return out


# --- .dockerignore -----------------------------------------------------------------------------
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore globbing (Go's filepath.Match plus `**`), anchored at the root."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            members = pattern[i + 1 : end]
            out.append("[" + ("^" + members[1:] if members.startswith("^") else members) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append((keep, _glob_regex(pattern)))
    return rules


def ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the build context leaves `path` (relative to the root) out: the last rule that
    matches it or one of its parent folders decides."""
    parts = Path(path).parts
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for keep, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            result = not keep
    return result


def project_files(folder: str) -> list[str]:
    """The files under `folder` that git tracks or would track (not build output or caches)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", folder],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout.decode()
        return [f for f in listed.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):  # no git, or not a clone: walk the folder
        return [
            f.relative_to(REPO).as_posix()
            for f in (REPO / folder).rglob("*")
            if f.is_file()
            and not any(p == "__pycache__" or p.endswith(".egg-info") for p in f.parts)
        ]


def copy_sources(name: str) -> list[str]:
    """The build-context paths that COPY/ADD read (not those copied from another stage)."""
    sources = []
    for instruction in instructions(name, "COPY") + instructions(name, "ADD"):
        flags, rest = split_flags(instruction.args)
        if "from" in flags:
            continue
        paths = exec_form(rest) or rest.split()
        assert len(paths) >= 2, f"line {instruction.line}: {instruction.args}"
        sources += paths[:-1]
    return sources


# --- running the server ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, timeout: float = 30.0):
    """(status, body bytes); no proxy, every response closed."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read()


def container_env(**extra: str) -> dict[str, str]:
    """This environment without any cloud platform's variables, the venv first on PATH (as
    /opt/venv/bin is in the images), one thread per server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PLATFORM_VARIABLES)}
    env.pop("GENLAB_HEALTH_URL", None)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path


@contextlib.contextmanager
def serving(argv: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[Server]:
    """Start `argv`, wait until /healthz and /readyz answer 200, stop it with SIGTERM after."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
        )
        server = Server(f"http://127.0.0.1:{port}", process, log)
        try:
            wait_until_ready(server)
            yield server
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    pending = ["/healthz", "/readyz"]
    while pending:
        code = server.process.poll()
        assert code is None, f"the server exited ({code}):\n{server.log.read_text()}"
        assert time.monotonic() < deadline, f"not ready in time:\n{server.log.read_text()}"
        try:
            status, _ = http("GET", server.url + pending[0], timeout=5)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            status = None
        if status == 200:
            pending.pop(0)
        else:
            time.sleep(0.2)


def assert_stopped_cleanly(server: Server) -> None:
    """SIGTERM (`docker stop`) shuts the server down gracefully. uvicorn re-raises the signal
    once it has shut down, so the exit is 0 or "killed by SIGTERM" (143 in Docker's terms)."""
    log = server.log.read_text()
    assert server.process.returncode in (0, -signal.SIGTERM), log
    assert "Application shutdown complete" in log, log


def run_healthcheck(name: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        healthcheck_command(name),
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def console_script(argv0: str) -> str:
    """The image's entry point here: genlab from this venv."""
    path = BIN / argv0
    assert path.is_file(), f"{argv0} is not installed in {BIN} (pip install -e .)"
    return str(path)


# --- the Dockerfiles ---------------------------------------------------------------------------
def test_parser_joins_continuations_and_skips_comments(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "# syntax=docker/dockerfile:1\nFROM python:3.11-slim AS build\n\n"
        "RUN a \\\n    # a comment inside\n    && b \\\n  && c\n"
        'CMD ["serve", "/models"]\n'
    )
    parsed = parse_dockerfile(dockerfile)
    assert [(i.keyword, i.line) for i in parsed] == [("FROM", 2), ("RUN", 4), ("CMD", 8)]
    assert parsed[1].args.split() == ["a", "&&", "b", "&&", "c"]
    assert exec_form(parsed[2].args) == ["serve", "/models"]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_base_images_are_pinned(name):
    stages: set[str] = set()
    for instruction in instructions(name, "FROM"):
        _, rest = split_flags(instruction.args)
        words = rest.split()
        image = words[0]
        if len(words) == 3 and words[1].upper() == "AS":
            stages.add(words[2].lower())
        if image.lower() in stages:
            continue  # an earlier stage
        assert "$" not in image, f"line {instruction.line}: pin {image} without build arguments"
        if "@sha256:" in image:
            continue
        tag = image.rpartition("/")[2].partition(":")[2]
        assert tag and tag != "latest", f"line {instruction.line}: {image} is not pinned to a tag"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_runs_as_a_non_root_user(name):
    user = last(name, "USER").args.split(":")[0]
    assert user not in ("root", "0", ""), f"the final stage runs as {user!r}"
    assert user.isdigit(), "a numeric user lets Kubernetes' runAsNonRoot check it"
    created = " ".join(i.args for i in final_stage(name) if i.keyword == "RUN")
    assert f"--uid {user}" in created, "the user is created in the final stage"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_entrypoint_is_the_genlab_console_script(name):
    tomllib = pytest.importorskip("tomllib")
    assert entrypoint(name) == ["genlab"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts.get("genlab") == "genlab.cli:main"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_default_command_serves_models_on_all_interfaces(name):
    cmd = default_cmd(name)
    assert cmd[0] == "serve"
    assert cmd[-1] == MODELS
    assert option(cmd, "--host") == "0.0.0.0"
    exposed = last(name, "EXPOSE").args.split()
    assert option(cmd, "--port") in exposed
    assert {"8000", "8080"} <= set(exposed)  # generic / Azure, SageMaker / Vertex
    if name == "gpu":
        assert option(cmd, "--device") == "cuda"
    env = " ".join(i.args for i in final_stage(name) if i.keyword == "ENV")
    assert "PYTHONUNBUFFERED=1" in env
    for variable in PLATFORM_VARIABLES:
        # `docker run IMAGE serve` must detect the platform from the platform's variables only
        assert variable not in env, f"the image sets {variable}"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_installs_genlab_with_the_serve_extra_under_the_pins(name):
    pyproject = (REPO / "pyproject.toml").read_text()
    readme = re.search(r'^readme\s*=\s*"([^"]+)"', pyproject, re.M)
    sources = copy_sources(name)
    for needed in ("pyproject.toml", "constraints.txt", "src", readme and readme.group(1)):
        assert needed in sources, f"{needed} is not copied into the build"
    installs = [i.args for i in instructions(name, "RUN") if "pip install" in i.args]
    assert installs and all("-c constraints.txt" in run for run in installs)
    extras = " ".join(installs)
    for key, value in arg_defaults(name).items():
        extras = extras.replace("${" + key + "}", value)
    assert re.search(r"\.\[[^\]]*\bserve\b", extras), "genlab[serve] is not installed"
    torch = next(run for run in installs if re.search(r"\btorch\b", run))
    if name == "cpu":
        assert "--index-url https://download.pytorch.org/whl/cpu" in torch


@pytest.mark.parametrize("name", DOCKERFILES)
def test_copy_sources_exist_and_are_in_the_build_context(name):
    rules = dockerignore_rules()
    for source in copy_sources(name):
        path = REPO / source
        assert path.exists(), f"COPY {source}: no such path in the repository"
        assert not ignored(source, rules), f"COPY {source}: excluded by .dockerignore"
        if path.is_dir():
            for relative in project_files(source):
                assert not ignored(relative, rules), f"{relative}: excluded by .dockerignore"


def test_dockerignore_keeps_local_state_out():
    rules = dockerignore_rules()
    for path in (
        ".git/HEAD",
        ".venv/bin/python",
        "runs/demo-vae/model.safetensors",
        "src/genlab/__pycache__/cli.cpython-311.pyc",
        "tests/serve/__pycache__/x.pyc",
        ".pytest_cache/v/cache",
        ".env",
        "bench/results/mnist5k_vae.json",
    ):
        assert ignored(path, rules), f"{path} would be sent to the Docker daemon"
    for path in ("README.md", "pyproject.toml", "constraints.txt", "src/genlab/serve/static/x"):
        assert not ignored(path, rules), f"{path} is needed in the build"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_healthcheck_fails_when_nothing_answers(name):
    options, _ = split_flags(last(name, "HEALTHCHECK").args)
    assert {"interval", "timeout", "start-period", "retries"} <= set(options)
    closed = f"http://127.0.0.1:{free_port()}/healthz"
    result = run_healthcheck(name, container_env(GENLAB_HEALTH_URL=closed))
    assert result.returncode == 1, result
    assert closed in result.stderr


# --- the image's commands, run here ------------------------------------------------------------
@pytest.mark.slow
def test_default_command_serves_a_run(tmp_path):
    port = free_port()
    cmd = [str(tiny_run("dcgan")) if arg == MODELS else arg for arg in default_cmd("cpu")]
    cmd = with_option(with_option(cmd, "--host", "127.0.0.1"), "--port", str(port))
    argv = [console_script(entrypoint("cpu")[0]), *cmd]
    env = container_env()
    with serving(argv, port, env, tmp_path / "server.log") as server:
        status, body = http("GET", f"{server.url}/v1/models")
        assert status == 200, body
        assert [m["name"] for m in json.loads(body)["models"]] == ["dcgan"]
        for name in DOCKERFILES:
            probe = run_healthcheck(name, {**env, "GENLAB_HEALTH_URL": f"{server.url}/healthz"})
            assert probe.returncode == 0, probe
    assert_stopped_cleanly(server)


@pytest.mark.slow
def test_sagemaker_runs_the_image_with_serve_alone(tmp_path):
    """`docker run IMAGE serve`: the entry point plus `serve`, the contract found from
    SM_MODEL_DIR (a folder holding a run), the port from SAGEMAKER_BIND_TO_PORT."""
    model_dir = tmp_path / "opt-ml-model"
    shutil.copytree(tiny_run("dcgan"), model_dir / "dcgan")
    port = free_port()
    env = container_env(SM_MODEL_DIR=str(model_dir), SAGEMAKER_BIND_TO_PORT=str(port))
    argv = [console_script(entrypoint("cpu")[0]), *entrypoint("cpu")[1:], "serve"]
    with serving(argv, port, env, tmp_path / "server.log") as server:
        status, body = http("GET", f"{server.url}/ping")
        assert status == 200, body
        status, body = http("POST", f"{server.url}/invocations", {"n": 1, "seed": 0})
        assert status == 200, body
        answer = json.loads(body)
        assert answer["model"] == "dcgan"
        assert len(answer["images"]) == 1
        assert base64.b64decode(answer["images"][0]).startswith(b"\x89PNG\r\n\x1a\n")
        # the HEALTHCHECK's default finds the SageMaker port without GENLAB_HEALTH_URL
        for name in DOCKERFILES:
            probe = run_healthcheck(name, env)
            assert probe.returncode == 0, probe
    assert_stopped_cleanly(server)


# --- docker-compose.yml ------------------------------------------------------------------------
def load_compose() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def interpolate(value: str) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR-default}, with the defaults (not this
    environment), so the checks do not depend on the shell."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)


def mounts(service: dict) -> list[tuple[str, str, bool]]:
    """(source, target, read-only) for the short and the long volume syntax."""
    found = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = interpolate(volume).split(":")
            found.append((source, target, "ro" in ",".join(mode).split(",")))
        else:
            found.append((volume["source"], volume["target"], bool(volume.get("read_only"))))
    return found


def environment_names(service: dict) -> set[str]:
    environment = service.get("environment", {})
    if isinstance(environment, dict):
        return set(environment)
    return {item.partition("=")[0] for item in environment}


def test_compose_server():
    server = load_compose()["services"]["server"]
    assert server["build"] in (".", {"context": "."})
    command = server["command"]
    assert isinstance(command, list), "exec form: the image's entry point gets these arguments"
    assert command[0] == "serve"
    assert option(command, "--host") == "0.0.0.0"
    key_variable = option(command, "--api-key-env")
    assert key_variable == "GENLAB_API_KEY"
    assert key_variable in environment_names(server)
    port = option(command, "--port")
    assert any(str(p).split(":")[-1] == port for p in server["ports"])
    runs = [
        arg for arg in map(interpolate, command) if arg.startswith(MODELS + "/") or arg == MODELS
    ]
    assert runs, "the server serves nothing under the mounted models folder"
    models = [m for m in mounts(server) if m[1] == MODELS]
    assert len(models) == 1, "the runs are mounted at the models folder"
    assert models[0][2], "the runs must be mounted read-only"
    test = server["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL")
    assert f"127.0.0.1:{port}/healthz" in " ".join(test)
    if test[0] == "CMD" and test[1:3] == ["python", "-c"]:
        compile(test[3], "healthcheck", "exec")
    assert {"interval", "timeout", "retries"} <= set(server["healthcheck"])


def test_compose_postgres_for_the_tuning_workers():
    compose = load_compose()
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:16"
    environment = postgres["environment"]
    user, password, db = (environment[f"POSTGRES_{k}"] for k in ("USER", "PASSWORD", "DB"))
    url = f"postgresql://{user}:{password}@postgres:5432/{db}"
    assert url == "postgresql://genlab:genlab@postgres:5432/genlab"
    assert url in (REPO / "docker-compose.yml").read_text(), "the storage URL comment"
    data = [m for m in mounts(postgres) if m[1] == "/var/lib/postgresql/data"]
    assert data and data[0][0] in compose.get("volumes", {}), "a named volume for the data"
    test = postgres["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL") and "pg_isready" in " ".join(test)
