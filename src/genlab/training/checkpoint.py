"""Run directories and atomic checkpoints.

A run directory:

    config.json            model name, model config, data, train config, seed, versions, commit
    model.safetensors      the latest weights (loaded strictly)
    ema.safetensors        the latest EMA weights, when EMA is on
    trainer_state.pt       optimizer, step, data-order and RNG states (tensors and plain types
                           only: loaded with torch.load(weights_only=True))
    metrics.csv            one row per logged step (events.* beside it when tensorboard is there)
    samples/step-N.png     sample grids from a fixed noise batch
    checkpoints/step-N/    the last K complete checkpoints (the three files above)
    checkpoints/best/      the checkpoint with the best validation loss

Every file is written to a temporary name, fsync'ed and renamed, and a checkpoint directory is
renamed into place only when complete, so a run killed at any instant (even SIGKILL) leaves
either the old checkpoint or the new one, never half of one. Resume reads the newest complete
`checkpoints/step-N`.

One process at a time trains into a run: it holds an exclusive lock on `RUN/.genlab.lock`
(flock, released by the kernel when the process ends in any way, even SIGKILL) for the whole
training, and a second one is refused with the holder's pid. A new run's folder is checked
empty and its config.json written under that lock, so two commands started together into the
same `--out` cannot both pass the check. Opening a run for training removes the temporaries a
killed writer left behind (`.NAME.tmp-PID` of a process that is gone, `.step-N.tmp`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from genlab.errors import GenlabError
from genlab.fileio import atomic_write, atomic_write_text, fsync_dir

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
EMA_WEIGHTS = "ema.safetensors"
STATE = "trainer_state.pt"
METRICS = "metrics.csv"
LOCK = ".genlab.lock"  # flock'ed by the process training into the run; holds its pid
# what atomic_write (genlab.fileio) leaves when its writer dies: ".NAME.tmp-PID"
_TEMPORARY = re.compile(r"^\..+\.tmp-(\d+)$")


def save_weights(path: Path, state: dict[str, Tensor], metadata: dict[str, str] | None = None):
    from safetensors.torch import save_file

    tensors, seen = {}, set()
    for k, v in state.items():
        v = v.detach().cpu().contiguous()
        # tied weights (a language model's head and embedding) share storage, which safetensors
        # refuses: store a copy under each name; strict loading assigns both the same values
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), v.shape)
        tensors[k] = v.clone() if key in seen else v
        seen.add(key)
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_weights(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise GenlabError(f"missing weights file {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise GenlabError(f"corrupt weights file {path}: {str(e).splitlines()[0]}") from None


def load_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise GenlabError(f"missing trainer state {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file; all mean "corrupt"
        raise GenlabError(f"corrupt trainer state {path}: {str(e).splitlines()[0]}") from None


class RunLock:
    """The exclusive lock of a run folder, held by the one process that trains into it.

    flock(2) on RUN/.genlab.lock, non-blocking: a second process gets a GenlabError naming the
    holder's pid (written into the file). The file is kept on release: unlinking a locked file
    would let a late opener lock the old inode while a newcomer locks a new file of that name.
    Where there is no fcntl (Windows) the lock is skipped.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / LOCK
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # not POSIX: no advisory locks to take
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise GenlabError(
                f"cannot write to output folder {self.folder}: {e.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by another process (BlockingIOError), or flock unsupported
            os.close(fd)
            raise GenlabError(
                f"{self.folder} is in use by another genlab process (pid {self.holder()})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def holder(self) -> str:
        """The pid the holder wrote (it writes it just after locking: wait a moment for it)."""
        for _ in range(50):
            try:
                text = self.path.read_text(encoding="utf-8").strip()
            except OSError:
                text = ""
            if text.isdigit():
                return text
            time.sleep(0.01)
        return "unknown"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RunDir:
    """The files of one training run (see the module docstring for the layout)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        # config.json of a resumed run with a new `steps`: written with its next checkpoint, so
        # a resume that fails before training (a malformed checkpoint) changes nothing saved
        self.pending_config: dict[str, Any] | None = None

    # --- paths -------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    # --- config ------------------------------------------------------------------------------
    def create(self, config: dict[str, Any]) -> None:
        """Make the folder (it must be new or empty) and write config.json.

        Takes no lock: for a process that knows it is alone (a test, a script); the training
        commands use `create_locked`."""
        self._check_new()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.config_path, json.dumps(config, indent=2) + "\n")
        except OSError as e:
            raise GenlabError(f"cannot write to output folder {self.path}: {e.strerror}") from None

    def create_locked(self, config: dict[str, Any]) -> RunLock:
        """A new run: make the folder, take its lock, check it is empty and write config.json
        under the lock (the check and the write are one step for every other genlab process).
        Returns the held lock; the caller releases it when training ends."""
        if not (self.path / LOCK).is_file():  # (with one: a run folder, maybe in training)
            self._check_new()  # before a lock file is made in someone's non-empty folder
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise GenlabError(f"cannot write to output folder {self.path}: {e.strerror}") from None
        lock = RunLock(self.path).acquire()
        try:
            self.create(config)
        except BaseException:
            lock.release()
            raise
        return lock

    def lock(self) -> RunLock:
        """Open an existing run for training: take its lock, then remove stale temporaries."""
        lock = RunLock(self.path).acquire()
        self.remove_stale_temporaries()
        return lock

    def _check_new(self) -> None:
        if self.path.exists() and (
            not self.path.is_dir() or any(p.name != LOCK for p in self.path.iterdir())
        ):
            raise GenlabError(
                f"output folder {self.path} already exists and is not empty; "
                "pass --resume to continue that run or choose another --out"
            )

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete what killed writers left: `.NAME.tmp-PID` files whose process is gone (a live
        one may be an evaluation writing eval.json) and unfinished checkpoint folders
        (`.step-N.tmp`, `.best.tmp`, `.best.old`: only the lock holder writes those). Call
        with the lock held. Returns what was removed."""
        removed = []
        folders = [self.path, self.samples_dir, self.checkpoints_dir, self.path / "figures"]
        for folder in (f for f in folders if f.is_dir()):
            for entry in folder.iterdir():
                match = _TEMPORARY.match(entry.name)
                if match and entry.is_file() and not _process_alive(int(match.group(1))):
                    entry.unlink(missing_ok=True)
                    removed.append(entry)
                elif folder == self.checkpoints_dir and entry.is_dir() and entry.name[:1] == ".":
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry)
        return removed

    def read_config(self) -> dict[str, Any]:
        if not self.path.is_dir():
            raise GenlabError(f"run directory {self.path} does not exist")
        if not self.config_path.is_file():
            raise GenlabError(f"{self.path} is not a genlab run directory (no {CONFIG})")
        try:
            config = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise GenlabError(f"corrupt {self.config_path}: {e}") from None
        if not isinstance(config, dict) or "model" not in config or "model_config" not in config:
            raise GenlabError(f"corrupt {self.config_path}: missing 'model' or 'model_config'")
        return config

    # --- checkpoints -------------------------------------------------------------------------
    def save_checkpoint(
        self,
        step: int,
        weights: dict[str, Tensor],
        ema: dict[str, Tensor] | None,
        state: dict[str, Any],
        *,
        keep_last: int,
        best: bool = False,
    ) -> Path:
        """Write checkpoints/step-N atomically, refresh the top-level files, prune old ones
        (config.json first when a resume changed it: see `pending_config`)."""
        if self.pending_config is not None:
            atomic_write_text(self.config_path, json.dumps(self.pending_config, indent=2) + "\n")
            self.pending_config = None
        meta = {"step": str(step)}
        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        final = self.checkpoints_dir / f"step-{step:08d}"
        tmp = self.checkpoints_dir / f".step-{step:08d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self._write_files(tmp, weights, ema, state, meta)
        fsync_dir(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_dir(self.checkpoints_dir)
        self._write_files(self.path, weights, ema, state, meta)
        if best:
            self._replace_dir(final, self.checkpoints_dir / "best")
        for old in self.step_checkpoints()[:-keep_last] if keep_last > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
        return final

    @staticmethod
    def _write_files(folder: Path, weights, ema, state, meta) -> None:
        save_weights(folder / WEIGHTS, weights, meta)
        if ema is not None:
            save_weights(folder / EMA_WEIGHTS, ema, meta)
        atomic_write(folder / STATE, lambda tmp: torch.save(state, tmp))

    def _replace_dir(self, source: Path, target: Path) -> None:
        tmp = target.with_name(f".{target.name}.tmp")
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(source, tmp)
        fsync_dir(tmp)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
        fsync_dir(target.parent)

    def step_checkpoints(self) -> list[Path]:
        """Complete step checkpoints, oldest first."""
        if not self.checkpoints_dir.is_dir():
            return []
        return sorted(
            p
            for p in self.checkpoints_dir.iterdir()
            if p.is_dir() and p.name.startswith("step-") and (p / STATE).is_file()
        )

    def latest_checkpoint(self) -> Path | None:
        found = self.step_checkpoints()
        return found[-1] if found else None

    def weights_folder(self, which: str = "last") -> Path:
        """'last' -> the run folder itself; 'best' -> checkpoints/best (falls back to last)."""
        best = self.checkpoints_dir / "best"
        if which == "best" and (best / WEIGHTS).is_file():
            return best
        if which not in ("last", "best"):
            raise GenlabError(f"unknown checkpoint {which!r}: expected 'last' or 'best'")
        return self.path


def _process_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (signal 0 checks without signalling)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or no pid a process can have
        return False
    except PermissionError:  # another user's process
        return True
    return True
