"""`photos`: scikit-image's bundled photographs, offline, cut into patches; and user images.

The image-to-image models (style transfer, super-resolution) learn from natural photographs
and are judged on photographs they never saw. scikit-image ships a few dozen images inside its
wheel (no download): the classic test photographs of image processing (astronaut, coffee,
camera, ...), microscopy and astronomy photographs and three grey textures. They are split **by
image**, so the held-out photographs are never seen in training, not even as neighbouring
patches:

    test   astronaut, coffee, camera                     (the classic SR/style test images)
    val    rocket
    train  the other 15 (chelsea, the stereo motorcycle pair, hubble, retina, IHC, moon, coins,
           page, text, clock, cell, brick, grass, gravel)

Each image is cut into square patches of `image_size` pixels every `stride` pixels (train:
half a patch by default, so patches overlap; val/test: one patch, so the tiles cover each
held-out image once). Grey photographs are repeated to RGB; with `channels=1` every image is
its ITU-R 601 luma (PIL's "L" mode), the channel SRCNN and ESPCN work on. Patches are 8-bit
like every image set of genlab (kind "image").

`photo_images(split)` gives the whole photographs of a split (benchmarks evaluate on whole
held-out images), `demo_crops(n, size)` seeded crops of the test photographs (what a
translation model's `sample(n)` translates) and `read_image(path)` one user image at full
size, with a one-line error for anything that is not a readable image.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genlab.data.base import ArrayDataset, DataSpec
from genlab.data.options import choice_option, int_option
from genlab.data.splits import one_split
from genlab.errors import GenlabError

SPLIT_IMAGES: dict[str, tuple[str, ...]] = {
    "test": ("astronaut", "coffee", "camera"),
    "val": ("rocket",),
    "train": (
        "chelsea",
        "motorcycle_left",
        "motorcycle_right",
        "hubble_deep_field",
        "retina",
        "immunohistochemistry",
        "moon",
        "coins",
        "page",
        "text",
        "clock",
        "cell",
        "brick",
        "grass",
        "gravel",
    ),
}
MAX_PATCH = 256  # patches come from the photographs at least this large (text, 172 px high,
# and page, 191 px, give none at 256); every split keeps photographs of 400 px or more


def _skimage_data():
    try:
        import skimage.data
    except ImportError:
        raise GenlabError(
            "dataset photos needs scikit-image: pip install 'genlab[images]' (or scikit-image)"
        ) from None
    return skimage.data


@lru_cache(maxsize=32)
def _photo(name: str) -> np.ndarray:
    """One bundled photograph as uint8 (H, W, 3) (grey ones repeated to RGB)."""
    data = _skimage_data()
    if name.startswith("motorcycle_"):
        left, right, _ = data.stereo_motorcycle()
        array = left if name == "motorcycle_left" else right
    else:
        array = getattr(data, name)()
    array = np.asarray(array)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    return np.ascontiguousarray(array[..., :3].astype(np.uint8))


def _channels(array: np.ndarray, channels: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (C, H, W) uint8: RGB, or the ITU-R 601 luma (PIL's "L")."""
    if channels == 3:
        return array.transpose(2, 0, 1)
    from PIL import Image

    return np.asarray(Image.fromarray(array, mode="RGB").convert("L"))[None]


def photo_images(split: str, *, channels: int = 3) -> list[Tensor]:
    """The whole photographs of `split` ("train", "val", "test"), float (C, H, W) in [0, 1]."""
    names = SPLIT_IMAGES[one_split(split)]
    return [torch.from_numpy(_channels(_photo(n), channels).copy()).float() / 255 for n in names]


def _patches(array: np.ndarray, size: int, stride: int) -> np.ndarray:
    """(C, H, W) -> (N, C, size, size): patches every `stride` px, the last row/column flush
    with the image's edge so every pixel is covered; none from an image smaller than `size`."""
    channels, height, width = array.shape

    def starts(length: int) -> list[int]:
        found = list(range(0, length - size + 1, stride))
        if found and found[-1] != length - size:
            found.append(length - size)
        return found

    pieces = [array[:, y : y + size, x : x + size] for y in starts(height) for x in starts(width)]
    return np.stack(pieces) if pieces else np.empty((0, channels, size, size), array.dtype)


@lru_cache(maxsize=8)
def _split_patches(split: str, image_size: int, stride: int, channels: int) -> Tensor:
    pieces = [
        _patches(_channels(_photo(name), channels), image_size, stride)
        for name in SPLIT_IMAGES[split]
    ]
    return torch.from_numpy(np.concatenate(pieces))


def load_photos(
    split: str = "train", *, image_size: int = 96, stride: int = 0, channels: int = 3
) -> ArrayDataset:
    """Patches (channels, image_size, image_size) of scikit-image's photographs, split by image.

    Options: image_size (patch side, default 96), stride (pixels between patches; default 0 =
    half a patch for train, a whole patch for val and test), channels (3 = RGB, default; 1 =
    luma)."""
    split = one_split(split)
    image_size = int_option("image_size", image_size, minimum=8, maximum=MAX_PATCH)
    stride = int_option("stride", stride, minimum=0, maximum=MAX_PATCH)
    channels = choice_option("channels", channels, (1, 3))
    if stride == 0:
        stride = max(1, image_size // 2) if split == "train" else image_size
    x = _split_patches(split, image_size, stride, channels)
    return ArrayDataset(x, None, DataSpec(kind="image", shape=(channels, image_size, image_size)))


def demo_crops(n: int, size: int, *, generator: torch.Generator | None = None, channels: int = 3):
    """n seeded random crops (n, channels, size, size) in [0, 1] of the held-out photographs:
    the inputs a translation model's `sample(n)` shows (never a training image)."""
    images = photo_images("test", channels=channels)
    largest = min(min(i.shape[1:]) for i in images)
    if not 1 <= size <= largest:
        raise ValueError(f"demo crops are 1 to {largest} px, got {size}")
    device = generator.device if generator is not None else torch.device("cpu")
    crops = []
    for _ in range(n):
        which = int(torch.randint(len(images), (), generator=generator, device=device))
        image = images[which]
        top = int(torch.randint(image.shape[1] - size + 1, (), generator=generator, device=device))
        left = int(torch.randint(image.shape[2] - size + 1, (), generator=generator, device=device))
        crops.append(image[:, top : top + size, left : left + size])
    return torch.stack(crops).to(device)


def read_image(path: str | Path, *, channels: int = 3, max_pixels: int | None = None) -> Tensor:
    """One image file at full size as float (channels, H, W) in [0, 1].

    Anything that is not a readable image (missing, empty, a folder, a truncated or corrupt
    file, another file type) is a one-line GenlabError naming the file; `max_pixels` refuses a
    larger image from its header, before it is decoded."""
    from PIL import Image, UnidentifiedImageError

    from genlab.data.folder import SAFE_FORMATS, decode_image

    path = Path(path).expanduser()
    if not path.exists():
        raise GenlabError(f"{path}: no such file")
    if not path.is_file():
        raise GenlabError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise GenlabError(f"{path}: empty file, not an image")
    try:
        with Image.open(path, formats=SAFE_FORMATS) as opened:
            width, height = opened.size
        if max_pixels is not None and width * height > max_pixels:
            raise GenlabError(
                f"{path}: {width}x{height} is larger than {max_pixels} pixels; resize it first"
            )
        picture = decode_image(path, channels, formats=SAFE_FORMATS)
    except UnidentifiedImageError:
        raise GenlabError(f"{path}: not an image (png, jpg, bmp, gif, webp, tiff)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise GenlabError(f"{path}: unreadable image ({type(e).__name__}: {e})") from None
    array = np.asarray(picture, dtype=np.uint8)
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(array.copy()).float() / 255
