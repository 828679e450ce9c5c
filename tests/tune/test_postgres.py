"""`genlab tune` on a real PostgreSQL server: two worker processes share one study; workers
opening a fresh database together (they race to create Optuna's tables; the losers retry);
an unreachable server is a one-line error.

A private cluster (initdb, trust authentication, 127.0.0.1 on a free port) lives in a fresh
folder under /tmp for this module and is stopped by its postmaster's PID at the end. Tests run
as root in CI and initdb refuses root, so there the server commands run as the `postgres` user
(runuser). Skipped only where the PostgreSQL binaries (or, as root, runuser and a `postgres`
user) are missing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

STUDY = "pg-test"
TRIALS = 8
SPACE = """\
train.lr: {type: float, low: 1e-3, high: 1e-2, log: true}
latent_dim: {type: categorical, choices: [2, 4]}
"""
FIXED = ["arch=mlp", "hidden=16", "train.eval_every=10", "train.batch_size=32"]
GENLAB = Path(sys.executable).with_name("genlab")
# A plain postgresql:// URL, as users write it: genlab picks psycopg2 (the tune extra's driver)
# when psycopg 3, SQLAlchemy's default, is absent.
DRIVER = "postgresql"


def _missing() -> str | None:
    """Why this machine cannot run a private PostgreSQL server, or None when it can."""
    if shutil.which("initdb") is None:
        return "PostgreSQL binaries (initdb, pg_ctl, createdb) are not on PATH"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root, and no runuser to start PostgreSQL as another user"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and no `postgres` user to run PostgreSQL as"
    return None


requires_postgres = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tool(name: str) -> str:
    """A PostgreSQL program: on PATH, else next to initdb (Debian keeps them in one folder)."""
    found = shutil.which(name)
    if found:
        return found
    return str(Path(os.path.realpath(shutil.which("initdb") or "initdb")).parent / name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie nobody has reaped yet has exited too
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


class Server:
    """A private PostgreSQL cluster in a fresh folder under /tmp."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="genlab-pg-", dir="/tmp"))
        self.root.chmod(0o755)
        self.as_root = os.geteuid() == 0
        if self.as_root:  # postgres must own the folder it writes the cluster to
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0

    @property
    def url(self) -> str:
        return f"{DRIVER}://genlab@127.0.0.1:{self.port}/genlab"

    def _run(self, *cmd: str) -> None:
        argv = ["runuser", "-u", "postgres", "--", *cmd] if self.as_root else list(cmd)
        done = subprocess.run(argv, cwd=self.root, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}{log}")

    def start(self) -> None:
        self._run(_tool("initdb"), "-D", str(self.data), "-U", "genlab", "--auth=trust",
                  "--no-sync", "-E", "UTF8", "--locale=C")  # fmt: skip
        for attempt in range(3):  # the free port may be taken before the server binds it
            self.port = _free_port()
            options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            try:
                self._run(_tool("pg_ctl"), "-D", str(self.data), "-o", options,
                          "-l", str(self.log), "-w", "-t", "60", "start")  # fmt: skip
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        self.createdb("genlab")

    def createdb(self, name: str) -> str:
        """A new, empty database on this server; returns its URL."""
        self._run(_tool("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "genlab", name)
        return f"{DRIVER}://genlab@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Fast shutdown (SIGINT) of the postmaster by its PID, then remove the folder."""
        try:
            pid_file = self.data / "postmaster.pid"
            if pid_file.exists():
                pid = int(pid_file.read_text().splitlines()[0])
                for sig, wait in ((signal.SIGINT, 30.0), (signal.SIGQUIT, 10.0)):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
                    deadline = time.monotonic() + wait
                    while _alive(pid) and time.monotonic() < deadline:
                        time.sleep(0.1)
                    if not _alive(pid):
                        break
                else:
                    raise RuntimeError(f"PostgreSQL (pid {pid}) did not stop; see {self.log}")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres(request) -> Server:
    server = Server()
    request.addfinalizer(server.stop)  # always: also when starting fails half-way
    server.start()
    return server


@pytest.mark.slow
@requires_postgres
def test_two_workers_share_one_postgres_study(postgres: Server, tmp_path: Path):
    import optuna

    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    outs = [tmp_path / f"worker-{i}" for i in range(2)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs: list[subprocess.Popen] = []
    with contextlib.ExitStack() as stack:
        for i, out in enumerate(outs):
            log = stack.enter_context(open(tmp_path / f"worker-{i}.log", "w"))
            argv = [str(GENLAB), "tune", "vae", "--data", "digits", "--space", str(space),
                    "--sampler", "random", "--seed", str(i), "--trials", str(TRIALS),
                    "--steps", "20", "--storage", postgres.url, "--study", STUDY,
                    "--out", str(out)]  # fmt: skip
            for option in FIXED:
                argv += ["-o", option]
            procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env))
        try:
            deadline = time.monotonic() + 180
            for p in procs:
                p.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    logs = [(tmp_path / f"worker-{i}.log").read_text() for i in range(2)]
    for i, p in enumerate(procs):
        assert p.returncode == 0, f"worker {i} exited {p.returncode}:\n{logs[i]}"

    from genlab.tune.study import storage_from_url

    storage = storage_from_url(postgres.url)
    try:
        study = optuna.load_study(study_name=STUDY, storage=storage)
        trials = study.get_trials(deepcopy=False)
    finally:
        storage.engine.dispose()
    # --trials counts every worker's trials; two workers that check the count at the same
    # moment may each start one more, so the study can hold one trial more than asked for.
    assert TRIALS <= len(trials) <= TRIALS + 1, [t.number for t in trials]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials), [
        (t.number, t.state.name) for t in trials
    ]
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    for t in trials:
        run = Path(t.user_attrs["run"])
        assert (run / "config.json").is_file(), (t.number, run)
        assert run.parent in [out / "trials" for out in outs], run
    # both workers ran trials (each writes its runs under its own --out)
    for i, out in enumerate(outs):
        assert any((out / "trials").iterdir()), f"worker {i} ran no trial:\n{logs[i]}"
        assert (out / "results.csv").is_file() and (out / "best.yaml").is_file()
    assert len({t.user_attrs["worker"] for t in trials}) == 2


@pytest.mark.slow
@requires_postgres
def test_workers_can_open_a_fresh_database_together(postgres: Server):
    """Every worker of a new study opens the storage at about the same moment."""
    code = (
        "import sys; from genlab.tune.study import storage_from_url; storage_from_url(sys.argv[1])"
    )
    errors = []
    for round_ in range(3):
        url = postgres.createdb(f"fresh{round_}")
        procs = [
            subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        for p in procs:
            _, err = p.communicate(timeout=120)
            if p.returncode != 0:
                errors.append(err.strip().splitlines()[-1])
    assert not errors, "\n".join(errors)


@pytest.mark.slow
def test_unreachable_postgres_is_a_one_line_error(tmp_path: Path, capsys):
    from genlab.cli import main

    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    url = f"{DRIVER}://genlab@127.0.0.1:{_free_port()}/genlab"  # nothing listens there
    argv = ["tune", "vae", "--data", "digits", "--space", str(space), "--trials", "1",
            "--steps", "1", "--storage", url, "--study", STUDY, "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err, err
    assert "storage" in err and url in err, err
    assert not (tmp_path / "out" / "trials").exists()
