"""`lfw`: the 100 face crops of scikit-image's bundled `lfw_subset` (offline, no download).

scikit-image ships a 200-image subset of Labeled Faces in the Wild (Huang et al. 2007): 100
faces followed by 100 non-face background patches, all 25x25 grey. We keep the faces, resized
with PIL's bicubic filter to `image_size` (default 32, a size the GAN generators build) and
stored as 8-bit like every other image set. Splits (fixed forever, by hashed index): 80 train,
10 val, 10 test. A tiny set: it is the case DiffAugment (train.augment) was made for.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from genlab.data.base import ArrayDataset, DataSpec
from genlab.data.options import int_option
from genlab.data.splits import one_split, stable_order
from genlab.errors import GenlabError

FACES = 100  # lfw_subset()[:100] are faces, [100:] are not


@lru_cache(maxsize=4)
def _faces(image_size: int) -> Tensor:
    try:
        from skimage.data import lfw_subset
    except ImportError:
        raise GenlabError(
            "dataset lfw needs scikit-image: pip install 'genlab[images]' (or scikit-image)"
        ) from None
    from PIL import Image

    faces = np.asarray(lfw_subset()[:FACES], dtype=np.float64)  # (100, 25, 25) in [0, 1]
    out = np.empty((FACES, 1, image_size, image_size), dtype=np.uint8)
    for i, face in enumerate(faces):
        picture = Image.fromarray(np.rint(face * 255).astype(np.uint8), mode="L")
        if picture.size != (image_size, image_size):
            picture = picture.resize((image_size, image_size), Image.BICUBIC)
        out[i, 0] = np.asarray(picture)
    return torch.from_numpy(out)


def split_index(split: str) -> np.ndarray:
    order = stable_order([f"lfw:{i}" for i in range(FACES)])
    parts = {"val": order[:10], "test": order[10:20], "train": order[20:]}
    return np.sort(parts[one_split(split)])


def load_lfw(split: str = "train", *, image_size: int = 32) -> ArrayDataset:
    """LFW faces (1, image_size, image_size), unlabelled; splits 80 / 10 / 10."""
    image_size = int_option("image_size", image_size, minimum=4, maximum=512)
    x = _faces(image_size)[torch.from_numpy(split_index(split))]
    return ArrayDataset(x, None, DataSpec(kind="image", shape=(1, image_size, image_size)))
