"""Run folders under concurrency and damage: one process trains into a run (a lock, checked with
real processes), a run killed before its first checkpoint restarts from step 0, stale
temporaries are removed, a checkpoint that cannot be resumed is one line and changes nothing,
and a resume with nothing left to train reports true numbers."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genlab.cli import main
from genlab.training.checkpoint import LOCK, load_weights

TINY = ["-q", "-o", "arch=mlp", "-o", "hidden=16", "-o", "latent_dim=2", "-o", "iwae_k=2"]
TINY += ["-o", "train.batch_size=16", "-o", "train.sample_every=1000", "-o", "train.eval_every=5"]
TINY += ["-o", "train.log_every=5"]
TINY_GAN = ["-q", "-o", "g_width=4", "-o", "d_width=4", "-o", "z_dim=2"]
TINY_GAN += ["-o", "train.batch_size=16", "-o", "train.sample_every=1000"]


def genlab(*args: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "genlab.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def run_cli(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    for fragment in fragments:
        assert fragment in err, err


def snapshot(folder: Path) -> dict[str, str]:
    """Every file of a run (but its lock file) and a hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != LOCK
    }


def losses(run: Path) -> list[tuple[str, str]]:
    """(step, loss) of every training row of a run's metrics.csv."""
    with open(run / "metrics.csv", newline="") as f:
        return [(row["step"], row["loss"]) for row in csv.DictReader(f) if row.get("loss")]


def dead_pid() -> int:
    """A pid no process can have (above the kernel's pid_max): a writer that is gone."""
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    except OSError:
        return 2**31 - 1


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> dict[str, Path]:
    """A finished VAE run (10 steps, checkpoints at 5 and 10) and a finished DCGAN run (4)."""
    folder = tmp_path_factory.mktemp("runs")
    vae, gan = folder / "vae", folder / "gan"
    args = ["train", "vae", "--data", "digits", "--steps", "10", "--out", vae, *TINY]
    assert main([str(a) for a in [*args, "-o", "train.checkpoint_every=5"]]) == 0
    args = ["train", "dcgan", "--data", "digits", "--steps", "4", "--out", gan, *TINY_GAN]
    assert main([str(a) for a in args]) == 0
    return {"vae": vae, "dcgan": gan}


# --- one trainer per run ----------------------------------------------------------------------
@pytest.mark.slow
def test_a_run_being_trained_refuses_a_second_trainer_with_the_holders_pid(tmp_path, capsys):
    out = tmp_path / "run"
    first = genlab("train", "vae", "--data", "digits", "--steps", "100000", "--out", out, *TINY,
                   "-o", "train.checkpoint_every=5")  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("checkpoints/step-*")) and time.monotonic() < deadline:
            assert first.poll() is None, first.communicate()[1]
            time.sleep(0.05)
        assert list(out.glob("checkpoints/step-*")), "the first run made no checkpoint in 120 s"
        in_use = f"error: {out} is in use by another genlab process (pid {first.pid})\n"
        code, _, err = run_cli(capsys, "train", "vae", "--data", "digits", "--seed", "2",
                               "--out", out, *TINY)  # fmt: skip
        assert (code, err) == (2, in_use)
        second = genlab("train", "vae", "--out", out, "--resume", "-q")
        try:
            _, err = second.communicate(timeout=60)
        finally:
            second.kill()
            second.communicate()
        assert (second.returncode, err) == (2, in_use)
        assert first.poll() is None  # the first one trains on, undisturbed
    finally:
        first.kill()
        first.communicate()
    # the kernel dropped the lock with the killed process: the run can be opened again
    code, out_text, err = run_cli(capsys, "train", "vae", "--out", out, "--resume", "--steps", "1")
    assert code == 0, err
    assert "nan" not in out_text and "train_loss" in out_text


HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid()}\\n".encode())
print("locked", flush=True)
time.sleep(120)
"""


def test_a_new_run_in_the_window_before_its_config_is_written_is_refused(tmp_path, capsys):
    """Two commands started together into one --out: the first has made the folder and holds
    its lock but has not written config.json yet (here a process that only holds the lock, as
    genlab's RunLock does). The second passes the emptiness check, and must still not train."""
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out / LOCK)],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline() == "locked\n"
        code, _, err = run_cli(capsys, "train", "vae", "--data", "digits", "--steps", "2",
                               "--out", out, *TINY)  # fmt: skip
        assert_one_line_error(code, err, f"is in use by another genlab process (pid {holder.pid})")
        assert [p.name for p in out.iterdir()] == [LOCK]  # nothing written
    finally:
        holder.kill()
        holder.communicate()


# --- killed before the first checkpoint -------------------------------------------------------
def test_a_run_killed_before_its_first_checkpoint_resumes_from_step_0(tmp_path, capsys):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    code, _, err = run_cli(capsys, "train", "vae", "--data", "digits", "--steps", "6",
                           "--seed", "3", "--out", reference, *TINY)  # fmt: skip
    assert code == 0, err
    # what a SIGKILL before the first checkpoint leaves: the config, rows of lost steps, and
    # the temporaries of writes that never finished
    killed.mkdir()
    shutil.copy(reference / "config.json", killed / "config.json")
    (killed / "metrics.csv").write_text("step,loss\n3,99.0\n")
    stale = killed / f".trainer_state.pt.tmp-{dead_pid()}"
    stale.write_bytes(b"")
    unfinished = killed / "checkpoints" / ".step-00000004.tmp"
    unfinished.mkdir(parents=True)
    (unfinished / "model.safetensors").write_bytes(b"")

    code, _, err = run_cli(capsys, "train", "vae", "--data", "digits", "--out", killed, *TINY)
    assert_one_line_error(code, err, "already exists", "pass --resume")
    code, _, err = run_cli(capsys, "train", "vae", "--out", killed, "--resume", "-q")
    assert code == 0, err
    for name in ("model.safetensors", "ema.safetensors"):
        if (reference / name).is_file():
            a, b = load_weights(reference / name), load_weights(killed / name)
            assert all(torch.equal(a[k], b[k]) for k in a), name
    assert losses(killed) == losses(reference)  # the rows of the lost steps are gone
    assert not stale.exists() and not unfinished.exists()


# --- checkpoints that cannot be resumed -------------------------------------------------------
def _malformed_states(state: dict) -> list[object]:
    missing = {k: v for k, v in state.items() if k not in ("optimizer", "opt_g")}
    groups = {"state": {}, "param_groups": []}  # an optimizer with no parameter groups
    wrong = {**state, **{k: groups for k in ("optimizer", "opt_g", "opt_d") if k in state}}
    return [missing, wrong, {**state, "rng": []}, [1, 2, 3]]


@pytest.mark.parametrize("model", ["vae", "dcgan"])
def test_a_malformed_trainer_state_is_one_line_and_changes_nothing(finished, tmp_path, capsys,
                                                                    model):  # fmt: skip
    for i, bad in enumerate(_malformed_states(torch.load(
            finished[model] / "trainer_state.pt", weights_only=True))):  # fmt: skip
        run = tmp_path / f"{model}-{i}"
        shutil.copytree(finished[model], run)
        for checkpoint in run.glob("checkpoints/step-*"):
            torch.save(bad, checkpoint / "trainer_state.pt")
        before = snapshot(run)
        code, _, err = run_cli(capsys, "train", model, "--out", run, "--resume", "--steps", "20")
        assert_one_line_error(code, err, "malformed trainer state", "checkpoints/step-")
        assert snapshot(run) == before


def test_weights_that_no_longer_fit_an_edited_config_are_one_line(finished, tmp_path, capsys):
    run = tmp_path / "edited"
    shutil.copytree(finished["vae"], run)
    saved = json.loads((run / "config.json").read_text())
    saved["model_config"]["latent_dim"] = 3
    (run / "config.json").write_text(json.dumps(saved))
    before = snapshot(run)
    code, _, err = run_cli(capsys, "train", "vae", "--out", run, "--resume", "--steps", "20")
    assert_one_line_error(code, err, "do not fit the model of", "size mismatch")
    assert snapshot(run) == before


# --- nothing left to train --------------------------------------------------------------------
def test_resuming_a_finished_run_reports_its_last_logged_metrics(finished, tmp_path, capsys):
    for model, key in (("vae", "loss"), ("dcgan", "d_loss")):
        run = tmp_path / model
        shutil.copytree(finished[model], run)
        with open(run / "metrics.csv", newline="") as f:
            last = [row[key] for row in csv.DictReader(f) if row.get(key)][-1]
        code, out, err = run_cli(capsys, "train", model, "--out", run, "--resume")
        assert code == 0, err
        shown = "train_loss" if key == "loss" else key
        assert f"{shown} {float(last):.4f}" in out and "nan" not in out, out


# --- a model that cannot read the data --------------------------------------------------------
def test_a_loss_that_fails_on_the_data_is_refused_before_the_folder_is_made(
    tmp_path, capsys, monkeypatch
):
    """The toy model declares no data kinds: its loss on two examples is the check (an MLP of
    width 1, as digits' data_shape (1, 8, 8) makes it, cannot multiply 8-wide rows)."""
    from genlab import registry

    monkeypatch.setitem(registry.MODELS, "toy", ("toy:Toy", "a test model"))
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "toy", "--data", "digits", "--out", out, "-q")
    assert_one_line_error(code, err, "toy cannot train on digits: RuntimeError")
    assert not out.exists()


def test_a_device_this_machine_lacks_is_refused_before_the_folder_is_made(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "vae", "--data", "digits", "--device", "cuda:99",
                           "--out", out, *TINY)  # fmt: skip
    assert_one_line_error(code, err, "cuda")
    assert not out.exists()
