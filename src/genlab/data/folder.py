"""`folder:PATH`: any folder of images as an unlabelled image dataset.

Lets users train on their own pictures without writing a loader. Files are found recursively
by extension (png, jpg, jpeg, bmp, gif, webp; any case), decoded with Pillow (EXIF rotation
applied, first frame of animations, transparency composited over black), converted to RGB or
grey, resized so the shorter side is `image_size` (bicubic) and centre-cropped to a square.

Files that cannot be decoded are counted and skipped with one warning, since a stray corrupt
file in a big photo folder should not stop a run; a folder with no readable image is an error.

Splits depend only on the files' relative paths: paths are ordered by a hash, the first 5% go
to val, the next 5% to test (at least one each when there are 3 or more images), the rest
(at least one) to train. Adding a file moves few others between splits.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from genlab.data.base import ArrayDataset, DataSpec
from genlab.data.options import choice_option, int_option
from genlab.data.splits import one_split, stable_order
from genlab.errors import GenlabError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})
# the formats a single image given by a user may be (genlab stylize/upscale, uploads), by PIL's
# names (its JPEG opener also reads a camera's MPO); none that PIL decodes by running another
# program (EPS runs Ghostscript)
SAFE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")


def image_files(folder: Path) -> list[Path]:
    """Image files under `folder` (recursive), sorted by relative path."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())


def read_image(path: Path, image_size: int, channels: int) -> np.ndarray:
    """One image as (channels, image_size, image_size) uint8. Raises on undecodable files."""
    return _resize_crop(decode_image(path, channels), image_size)


def decode_image(
    source: Path | IO[bytes], channels: int, formats: tuple[str, ...] | None = None
) -> PILImage:
    """The fully decoded image (a file or its bytes) in mode L or RGB; any exception means an
    unreadable file. `formats`: PIL's names of the formats allowed (None: any PIL reads)."""
    from PIL import Image, ImageOps

    with Image.open(source, formats=formats) as opened:
        image = ImageOps.exif_transpose(opened)  # a new, fully decoded image
        if image.mode in ("P", "PA", "LA", "RGBA") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
        return image.convert("L" if channels == 1 else "RGB")


def _resize_crop(image: PILImage, size: int) -> np.ndarray:
    from PIL import Image

    width, height = image.size
    scale = size / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    image = image.resize(new, Image.Resampling.BICUBIC)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    image = image.crop((left, top, left + size, top + size))
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # (C, S, S)


@lru_cache(maxsize=4)
def _read_folder(
    folder: str, image_size: int, channels: int, signature: tuple[tuple[str, int, int], ...]
) -> tuple[Tensor, tuple[str, ...]]:
    """Decoded images and their relative paths; `signature` (path, size, mtime) keys the cache."""
    images, names, failures = [], [], []
    for relative, _, _ in signature:
        try:
            image = decode_image(Path(folder) / relative, channels)
        except Exception as e:  # any decoder failure on a user's file: count it and move on
            failures.append(f"{relative} ({type(e).__name__})")
        else:
            images.append(_resize_crop(image, image_size))
            names.append(relative)
    if not images:
        raise GenlabError(
            f"folder:{folder}: none of its {len(signature)} image files could be read "
            f"(first: {failures[0]})"
        )
    if failures:
        warnings.warn(
            f"folder:{folder}: skipped {len(failures)} of {len(signature)} image files that "
            f"could not be read (first: {failures[0]})",
            stacklevel=2,
        )
    return torch.from_numpy(np.stack(images)), tuple(names)


def split_indices(names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """90 / 5 / 5 by hashed relative path; indices sorted by name within each split."""
    order = stable_order([f"folder:{name}" for name in names])
    held = max(1, len(names) // 20) if len(names) >= 3 else 0
    return {
        "val": np.sort(order[:held]),
        "test": np.sort(order[held : 2 * held]),
        "train": np.sort(order[2 * held :]),
    }


def load_folder(
    path: str, split: str = "train", *, image_size: int = 64, channels: int = 3
) -> ArrayDataset:
    """`folder:PATH`: the images under PATH, (channels, image_size, image_size), unlabelled.

    Options: image_size (default 64), channels (3 = RGB, default; 1 = grey). Splits: 90% train,
    5% val, 5% test by hashed file path (see the module docstring).
    """
    one_split(split)
    image_size = int_option("image_size", image_size, minimum=1, maximum=4096)
    channels = choice_option("channels", channels, (1, 3))
    folder = Path(path).expanduser()
    if not folder.exists():
        raise GenlabError(f"folder:{path}: no such folder")
    if not folder.is_dir():
        raise GenlabError(f"folder:{path}: not a folder")
    files = image_files(folder)
    if not files:
        raise GenlabError(
            f"folder:{path}: no image files ({', '.join(sorted(EXTENSIONS))}) found in it or "
            "its subfolders"
        )
    signature = tuple(
        (p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files
    )
    x, names = _read_folder(str(folder.resolve()), image_size, channels, signature)
    index = split_indices(names)[split]
    if len(index) == 0:
        raise GenlabError(
            f"folder:{path} has only {len(names)} readable images, too few for a {split} split "
            "(3 or more are needed)"
        )
    spec = DataSpec(
        kind="image", shape=(channels, image_size, image_size), extra={"folder": str(folder)}
    )
    return ArrayDataset(x[torch.from_numpy(index)], None, spec)
