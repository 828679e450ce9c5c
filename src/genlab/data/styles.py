"""Style images for neural style transfer: built-in ones (offline) and the user's files.

`style_image(name_or_path, size)` gives one style image as float (3, H, W) in [0, 1]. The
built-in names need no download:

    brick, grass, gravel   scikit-image's grey textures (512 x 512), repeated to RGB
    hubble_deep_field      scikit-image's Hubble photograph (872 x 1000): colour on black
    mosaic                 procedural: Voronoi cells of a vivid palette with dark grout lines
    waves                  procedural: curling bands of navy, blue and teal with cream foam
    swirl                  procedural: spiral brush strokes of blues and yellows around vortices

The three procedural styles are made with numpy from a fixed seed (512 x 512, bit-identical
between runs), so that offline demos show a visible transfer of colour and texture: the grey
textures alone would only show texture. Any other name is read as an image file
(genlab.data.photos.read_image: a missing or unreadable file is one line).

The `styles` dataset holds square patches of every built-in style: AdaIN (Huang & Belongie
2017) draws its style batches from it. Each style image is split by columns, so no patch of one
split overlaps another's: the right-most `band` columns are the test split, the `band` before
them val, the rest train, with band = max(image_size, width / 8). Train patches start every
half patch, val/test patches every whole patch.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genlab.data.base import ArrayDataset, DataSpec
from genlab.data.options import int_option
from genlab.data.splits import one_split
from genlab.errors import GenlabError

TEXTURES = ("brick", "grass", "gravel", "hubble_deep_field")  # scikit-image's, offline
PROCEDURAL = ("mosaic", "waves", "swirl")  # made here with numpy
STYLES = TEXTURES + PROCEDURAL
SIDE = 512  # the procedural styles' size
MAX_PATCH = 128  # the largest `styles` patch: a 512-px image keeps 256 train columns


# --- the procedural styles ----------------------------------------------------------------------
def _palette(colours: list[str]) -> np.ndarray:
    """Hex colours "#rrggbb" -> (K, 3) floats in [0, 1]."""
    return np.array([[int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)] for c in colours])


def _gradient(value: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (H, W) -> colours (H, W, 3) interpolated along the palette."""
    stops = np.linspace(0.0, 1.0, len(colours))
    return np.stack([np.interp(value, stops, colours[:, c]) for c in range(3)], axis=-1)


def _mosaic(rng: np.random.Generator) -> np.ndarray:
    """Voronoi cells around jittered grid points, each a palette colour (brightness jittered),
    with dark grout where the nearest two cell centres are almost equally near."""
    palette = _palette(
        ["#d7263d", "#f46036", "#f9c80e", "#2e86ab", "#1b998b", "#7b2cbf", "#3bb273", "#ff5d8f"]
    )
    cells = 12  # per side
    grid = np.stack(np.meshgrid(np.arange(cells), np.arange(cells)), -1).reshape(-1, 2) + 0.5
    centres = (grid + rng.uniform(-0.35, 0.35, grid.shape)) * SIDE / cells  # (N, 2) as (x, y)
    colours = palette[rng.integers(0, len(palette), len(centres))] * rng.uniform(
        0.75, 1.0, (len(centres), 1)
    )
    from scipy.spatial import cKDTree  # scipy comes with scikit-learn

    ys, xs = np.mgrid[0:SIDE, 0:SIDE]
    pixels = np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.float64)
    d, nearest = cKDTree(centres).query(pixels, k=2)  # (H*W, 2) each, nearest first
    image = colours[nearest[:, 0]]
    image[d[:, 1] - d[:, 0] < 3.0] = 0.08  # grout
    image = image.reshape(SIDE, SIDE, 3)
    return image + rng.normal(0.0, 0.03, image.shape)  # a little glaze


def _waves(rng: np.random.Generator) -> np.ndarray:
    """Bands that curl sideways (a phase bent by two sines), coloured along a sea palette,
    with cream foam at the crest of each band."""
    palette = _palette(["#0b1d51", "#1f4e8c", "#2f7fb8", "#3fa7a3", "#9fd3c7"])
    ys, xs = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    bend = 0.06 * np.sin(2 * np.pi * (3 * xs + 0.8 * np.sin(2 * np.pi * 2 * ys)))
    phase = 9 * (ys + bend + 0.03 * np.sin(2 * np.pi * 11 * xs))  # bands per image height
    fraction = phase % 1.0
    image = _gradient(fraction, palette)
    foam = _palette(["#f4ecd6"])[0]
    crest = fraction > 0.9
    image[crest] = foam
    return image + rng.normal(0.0, 0.02, image.shape)


def _swirl(rng: np.random.Generator) -> np.ndarray:
    """Spiral brush strokes: around a few vortices the stroke direction winds with
    log-distance; the stroke value runs along a night-sky palette (deep blue to yellow)."""
    palette = _palette(["#0a1a4a", "#1d3f8f", "#4a7bd0", "#9cc3e6", "#f2d04b", "#fff3b0"])
    ys, xs = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    field = np.zeros((SIDE, SIDE))
    for _ in range(4):
        cx, cy = rng.uniform(0.15, 0.85, 2)
        r = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) + 1e-3
        angle = np.arctan2(ys - cy, xs - cx)
        field += np.exp(-r / 0.25) * np.sin(3 * angle + 14 * np.log(r))
    strokes = np.sin(40 * field + 6 * rng.normal(0.0, 0.05, field.shape).cumsum(axis=1) / 10)
    value = np.clip(0.5 + 0.35 * field + 0.15 * strokes, 0.0, 1.0)
    return _gradient(value, palette)


_MAKERS = {"mosaic": _mosaic, "waves": _waves, "swirl": _swirl}


@lru_cache(maxsize=16)
def builtin_style(name: str) -> np.ndarray:
    """A built-in style at its own size as uint8 (H, W, 3)."""
    if name in _MAKERS:
        rng = np.random.default_rng(sum(map(ord, name)))  # a fixed seed per style
        array = np.clip(_MAKERS[name](rng), 0.0, 1.0)
        return np.rint(array * 255).astype(np.uint8)
    try:
        import skimage.data
    except ImportError:
        raise GenlabError(
            f"style {name} needs scikit-image: pip install 'genlab[images]' (or scikit-image)"
        ) from None
    array = np.asarray(getattr(skimage.data, name)())
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    return np.ascontiguousarray(array[..., :3].astype(np.uint8))


# --- one style image ----------------------------------------------------------------------------
def resize_longer_side(image: Tensor, size: int) -> Tensor:
    """(C, H, W) floats in [0, 1] resized (PIL bicubic, antialiased) so max(H, W) == size."""
    from PIL import Image

    _, height, width = image.shape
    scale = size / max(height, width)
    new = (max(1, round(width * scale)), max(1, round(height * scale)))
    if new == (width, height):
        return image
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    resized = np.asarray(picture.resize(new, Image.Resampling.BICUBIC), dtype=np.uint8)
    resized = resized[..., None] if resized.ndim == 2 else resized
    return torch.from_numpy(resized.transpose(2, 0, 1).copy()).float() / 255


def style_image(name_or_path: str | Path, size: int | None = None) -> Tensor:
    """A built-in style (see STYLES) or an image file, as float (3, H, W) in [0, 1]; `size`:
    the longer side it is resized to (None: as it is). A name that is neither a built-in style
    nor a readable image file is a one-line GenlabError."""
    from genlab.data.photos import read_image

    name = str(name_or_path)
    if size is not None:
        size = int_option("style size", size, minimum=8, maximum=4096)
    if name in STYLES:
        image = torch.from_numpy(builtin_style(name).transpose(2, 0, 1).copy()).float() / 255
    elif not Path(name).expanduser().exists():
        raise GenlabError(
            f"style {name!r} is neither a built-in style ({', '.join(STYLES)}) nor a file"
        )
    else:
        image = read_image(name, channels=3)
    return image if size is None else resize_longer_side(image, size)


# --- the `styles` dataset -----------------------------------------------------------------------
def _columns(width: int, image_size: int, split: str) -> slice:
    """The columns of a style image that belong to `split` (see the module docstring)."""
    band = max(image_size, width // 8)
    return {
        "train": slice(0, width - 2 * band),
        "val": slice(width - 2 * band, width - band),
        "test": slice(width - band, width),
    }[split]


def _patches(array: np.ndarray, size: int, stride: int) -> np.ndarray:
    """(H, W, 3) -> (N, 3, size, size) patches every `stride` px, the last flush with the edge."""
    height, width = array.shape[:2]

    def starts(length: int) -> list[int]:
        found = list(range(0, length - size + 1, stride))
        return found if found[-1] == length - size else [*found, length - size]

    return np.stack(
        [
            array[y : y + size, x : x + size].transpose(2, 0, 1)
            for y in starts(height)
            for x in starts(width)
        ]
    )


@lru_cache(maxsize=8)
def _split_patches(split: str, image_size: int) -> Tensor:
    stride = max(1, image_size // 2) if split == "train" else image_size
    pieces = []
    for name in STYLES:
        array = builtin_style(name)
        pieces.append(
            _patches(array[:, _columns(array.shape[1], image_size, split)], image_size, stride)
        )
    return torch.from_numpy(np.concatenate(pieces))


def load_styles(split: str = "train", *, image_size: int = 32) -> ArrayDataset:
    """Patches (3, image_size, image_size) of every built-in style, unlabelled; split by
    columns of each style image (see the module docstring). Option: image_size (default 32,
    at most 128)."""
    split = one_split(split)
    image_size = int_option("image_size", image_size, minimum=8, maximum=MAX_PATCH)
    x = _split_patches(split, image_size)
    return ArrayDataset(x, None, DataSpec(kind="image", shape=(3, image_size, image_size)))
