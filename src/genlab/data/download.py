"""Downloads that leave either a verified file or nothing at all.

A half-written or substituted data file that merely *looks* present is worse than a missing one:
it fails much later, far from the cause, or trains on garbage. So every download streams into a
temporary file in the destination folder, checks the byte count against Content-Length and the
SHA-256 against a pinned value, is flushed to disk (fsync), and only then is moved into place
with an atomic `os.replace`. On any failure the temporary file is removed: `dest` is either
absent (or as it was) or correct. Mirrors are tried in order; concurrent downloads of the same
file are safe because each writes its own temporary file.

Only the standard library's urllib is used, so downloading adds no dependency.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from genlab.errors import GenlabError
from genlab.fileio import fsync_dir, sha256_file

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
USER_AGENT = "genlab-data/0.1 (python-urllib)"  # some hosts refuse urllib's default agent


@dataclass(frozen=True)
class RemoteFile:
    """A file genlab knows how to get: its place under the data folder, mirrors and sha256."""

    path: str  # relative to the data folder, e.g. "mnist/train-images-idx3-ubyte.gz"
    urls: tuple[str, ...]  # mirrors, tried in order
    sha256: str
    offline_hint: str = ""  # what to do without network; ends up in the error message


class _MirrorFailed(Exception):
    """One mirror did not deliver; `unreachable` when we never got an HTTP response."""

    def __init__(self, message: str, *, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable


def download(
    url_or_urls: str | Sequence[str],
    dest: Path,
    sha256: str,
    *,
    timeout: float = 30.0,
    offline_hint: str = "",
) -> Path:
    """Make `dest` hold the file with this sha256, fetching it from the first mirror that works.

    `sha256`: the full hex digest, or a published prefix of it (at least 8 hex digits, as
    torch.hub pins its files), which the file's digest must start with.
    An existing file with the right checksum is kept as it is (no network). Raises GenlabError
    when no mirror delivers the right bytes; the message says what each mirror did and, when
    none could be reached, that we look offline, `offline_hint`, and where to put the file.
    """
    urls = (url_or_urls,) if isinstance(url_or_urls, str) else tuple(url_or_urls)
    if not urls:
        raise ValueError("no URL to download from")
    dest = Path(dest)
    expected = sha256.lower()
    if len(expected) < 8:
        raise ValueError("a sha256 pin needs at least 8 hex digits")
    stale = ""
    if dest.is_file():
        actual = sha256_file(dest)
        if actual.startswith(expected):
            return dest
        stale = f"; the existing {dest} has the wrong sha256 ({actual[:12]}...) and was kept"
        log.warning("%s has sha256 %s, expected %s: downloading it again", dest, actual, expected)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GenlabError(
            f"cannot create {dest.parent} ({e.strerror}); set GENLAB_DATA_DIR to a writable folder"
        ) from e

    failures: list[_MirrorFailed] = []
    for url in urls:
        try:
            _download_one(url, dest, expected, timeout)
        except _MirrorFailed as e:
            log.info("download failed: %s", e)
            failures.append(e)
        else:
            return dest

    reasons = "; ".join(str(e) for e in failures)
    hint = f" {offline_hint}" if offline_hint else ""
    by_hand = f" Expected file: {dest} (sha256 {expected})."
    if all(e.unreachable for e in failures):
        raise GenlabError(
            f"cannot download {dest.name}: no mirror could be reached ({reasons}); this machine "
            f"looks offline{stale}.{hint}{by_hand}"
        )
    raise GenlabError(
        f"cannot download {dest.name}: {reasons}{stale}; nothing was saved.{hint}{by_hand}"
    )


def _download_one(url: str, dest: Path, expected: str, timeout: float) -> None:
    """Stream one mirror into a temporary file next to `dest`; move it there only if verified."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as e:
        raise GenlabError(
            f"cannot write into {dest.parent} ({e.strerror}); set GENLAB_DATA_DIR to a writable "
            "folder"
        ) from e
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            actual = _stream(url, out, timeout)
            out.flush()
            os.fsync(out.fileno())
        if not actual.startswith(expected):
            raise _MirrorFailed(
                f"{url} sent a file with sha256 {actual[:16]}..., expected {expected[:16]}..."
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a data folder is usually shared
        os.replace(tmp, dest)
    except OSError as e:  # network errors became _MirrorFailed in _stream: this is local disk
        tmp.unlink(missing_ok=True)
        raise GenlabError(f"cannot save {dest} ({e.strerror or e})") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)


def _stream(url: str, out: BinaryIO, timeout: float) -> str:
    """Copy the body at `url` into `out`; the body's sha256, or _MirrorFailed."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            length = int(declared) if declared is not None and declared.isdigit() else None
            while chunk := response.read(CHUNK_BYTES):
                digest.update(chunk)
                received += len(chunk)
                _write(out, chunk)
    except urllib.error.HTTPError as e:
        e.close()  # it holds the open response
        raise _MirrorFailed(f"{url} answered HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise _MirrorFailed(f"{url}: {_reason(e.reason)}", unreachable=True) from None
    except (http.client.HTTPException, OSError) as e:  # reset, timeout mid-transfer, bad framing
        raise _MirrorFailed(f"{url}: transfer failed after {received} bytes ({e!r})") from None
    # urllib returns b"" rather than raising when the server closes early, so count ourselves.
    if length is not None and received != length:
        raise _MirrorFailed(f"{url}: transfer cut short, got {received} of {length} bytes")
    return digest.hexdigest()


def _write(out: BinaryIO, chunk: bytes) -> None:
    try:
        out.write(chunk)
    except OSError as e:  # a full disk is not the mirror's fault: stop, don't try the next one
        raise GenlabError(f"cannot write the download to disk ({e.strerror})") from e


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason)


def cache_dir() -> Path:
    """genlab's cache of files it makes or fetches for itself (a text's token ids, metric
    weights, reference statistics): $GENLAB_CACHE_DIR, else ~/.cache/genlab (not created here).
    Independent of $GENLAB_DATA_DIR, which may be a read-only share; deleting the cache loses
    nothing that cannot be made or downloaded again."""
    configured = os.environ.get("GENLAB_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "genlab"


def fetch(file: RemoteFile, *, root: Path | str | None = None, timeout: float = 30.0) -> Path:
    """The local path of `file` under `root` (default: `data_dir()`), downloading it if absent."""
    from genlab.data import data_dir  # the package root; imported late to keep imports acyclic

    dest = (Path(root).expanduser() if root is not None else data_dir()) / file.path
    return download(file.urls, dest, file.sha256, timeout=timeout, offline_hint=file.offline_hint)
