"""The IDX format of MNIST and Fashion-MNIST (LeCun et al., http://yann.lecun.com/exdb/mnist/).

Layout: a 4-byte magic number `0x00 0x00 <type> <ndim>`, then `ndim` big-endian uint32 sizes,
then the values in C order, big-endian. MNIST images have magic 0x00000803 (2051: uint8, 3-D),
labels 0x00000801 (2049: uint8, 1-D). Files may be gzipped (as downloaded).

Every inconsistency (bad magic, unknown type, a body shorter or longer than the header says, a
broken gzip stream) is a GenlabError that names the file, because a corrupt download must stop
the run at load time, not produce a silently wrong dataset.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from genlab.errors import GenlabError

IMAGES_MAGIC = 0x00000803  # uint8, 3 dimensions (N, rows, cols)
LABELS_MAGIC = 0x00000801  # uint8, 1 dimension (N,)

# type code -> big-endian numpy dtype
_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _TYPES.items()}


def read_idx(path: Path | str, *, magic: int | None = None) -> np.ndarray:
    """The array stored in an IDX file (gzipped or not), native byte order, writable.

    `magic`, when given, is the magic number the file must carry (e.g. IMAGES_MAGIC).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip signature
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise GenlabError(f"cannot read {path}: {e}; delete it so it is downloaded again") from e
    return parse_idx(raw, source=str(path), magic=magic)


def parse_idx(data: bytes, *, source: str = "IDX data", magic: int | None = None) -> np.ndarray:
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise GenlabError(f"{source} is not an IDX file (it does not start with 0x0000)")
    (found,) = struct.unpack(">I", data[:4])
    if magic is not None and found != magic:
        raise GenlabError(
            f"{source} has magic number {found:#010x}, expected {magic:#010x}: wrong or corrupt file"
        )
    type_code, ndim = data[2], data[3]
    if type_code not in _TYPES:
        raise GenlabError(f"{source} has unknown IDX type code {type_code:#04x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise GenlabError(f"{source} is truncated inside its header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_TYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise GenlabError(
            f"{source}: the header promises shape {shape} ({expected} bytes) but "
            f"{len(data) - header} bytes follow; the file is truncated or corrupt"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a native-order, writable copy


def write_idx(path: Path | str, array: np.ndarray) -> None:
    """Write `array` as an IDX file (gzipped when the name ends in .gz). Used to make fixtures."""
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = header + array.astype(_TYPES[code]).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(body, mtime=0) if path.suffix == ".gz" else body)
