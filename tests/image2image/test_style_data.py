"""The built-in style images and the `styles` dataset (genlab/data/styles.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.data import load_dataset
from genlab.data.styles import PROCEDURAL, STYLES, builtin_style, style_image
from genlab.errors import GenlabError
from genlab.imaging import save_image


@pytest.mark.parametrize("name", STYLES)
def test_every_builtin_style_is_an_rgb_image_in_the_unit_range(name):
    image = style_image(name, 64)
    assert image.shape[0] == 3 and max(image.shape[1:]) == 64
    assert image.min() >= 0 and image.max() <= 1 and image.std() > 0.05


@pytest.mark.parametrize("name", PROCEDURAL)
def test_the_procedural_styles_are_colourful_and_fixed(name):
    array = builtin_style(name).astype(np.float64) / 255
    saturation = array.max(-1) - array.min(-1)  # HSV chroma
    assert saturation.mean() > 0.25, "a style for offline demos must carry colour"
    builtin_style.cache_clear()
    assert np.array_equal(builtin_style(name) / 255, array)  # the same seed, the same picture


def test_a_style_file_is_read_and_resized_by_its_longer_side(tmp_path):
    path = tmp_path / "style.png"
    save_image(torch.rand(3, 30, 60), path)
    assert style_image(path).shape == (3, 30, 60)
    assert style_image(str(path), 20).shape == (3, 10, 20)
    with pytest.raises(GenlabError, match="neither a built-in style"):
        style_image(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_text("not a picture")
    with pytest.raises(GenlabError, match="not an image"):
        style_image(tmp_path / "junk.png")


def test_the_styles_dataset_splits_each_image_by_columns():
    train, val, test = (load_dataset("styles", s, image_size=32) for s in ("train", "val", "test"))
    assert train.spec.kind == "image" and train.spec.shape == (3, 32, 32)
    assert len(train) > 10 * len(val) > 0 and len(val) == len(test)
    seen = {bytes(x.numpy()) for x in train.x}
    assert not any(bytes(x.numpy()) in seen for x in (*val.x, *test.x))
    batch = train.batch(torch.arange(4))
    assert batch.dtype == torch.float32 and batch.min() >= 0 and batch.max() <= 1
    with pytest.raises(GenlabError, match="image_size"):
        load_dataset("styles", "train", image_size=129)
