"""Durable file writes: temp file, fsync, atomic rename (POSIX), so a crash never leaves half a file."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable; harmless to skip where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not supported on this platform/filesystem
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` then fsync and rename tmp -> path (same folder, so rename is atomic)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """The sha256 hex digest of a file, read in chunks (weights files are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def read_settings(path: Path | str, what: str):
    """The data of a JSON (.json) or YAML (any other name) file; GenlabError naming `what`
    (e.g. "config file") when it cannot be read or parsed."""
    from genlab.errors import GenlabError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise GenlabError(f"cannot read the {what} {path}: {e.strerror}") from None
    try:
        if path.suffix == ".json":
            import json

            return json.loads(text)
        import yaml  # YAML reads JSON too

        return yaml.safe_load(text)
    except Exception as e:  # json and yaml raise their own types; both mean "not valid"
        raise GenlabError(f"cannot parse the {what} {path}: {str(e).splitlines()[0]}") from None
