"""`photos` (scikit-image's photographs split by image), demo crops and reading user images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.data import load_dataset
from genlab.data.photos import SPLIT_IMAGES, _patches, demo_crops, photo_images, read_image
from genlab.errors import GenlabError


def test_the_splits_hold_different_photographs():
    names = [n for split in SPLIT_IMAGES.values() for n in split]
    assert len(names) == len(set(names)) == 19
    assert SPLIT_IMAGES["test"] == ("astronaut", "coffee", "camera")


def test_patches_are_8bit_images_of_the_requested_size():
    data = load_dataset("photos", "val", image_size=64)
    assert data.spec.kind == "image" and data.spec.shape == (3, 64, 64)
    x = data.batch(torch.arange(len(data)))
    assert x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1
    assert torch.equal(x, torch.round(x * 255) / 255)
    grey = load_dataset("photos", "val", image_size=64, channels=1)
    assert grey.spec.shape == (1, 64, 64) and len(grey) == len(data)


def test_test_tiles_cover_each_held_out_image_and_train_patches_overlap():
    image = np.arange(3 * 10 * 13).reshape(3, 10, 13)
    tiles = _patches(image, 4, 4)  # starts 0, 4, 6 down and 0, 4, 8, 9 across
    assert tiles.shape == (3 * 4, 3, 4, 4)
    assert np.array_equal(tiles[-1], image[:, 6:10, 9:13])
    test = load_dataset("photos", "test", image_size=100)
    sizes = [(512, 512), (400, 600), (512, 512)]
    expected = sum((-(-h // 100)) * (-(-w // 100)) for h, w in sizes)
    assert len(test) == expected
    train = load_dataset("photos", "train", image_size=64)
    assert len(train) > len(load_dataset("photos", "train", image_size=64, stride=64))


def test_photo_images_are_whole_and_luma_is_pils():
    rgb = photo_images("test")
    assert [tuple(i.shape) for i in rgb] == [(3, 512, 512), (3, 400, 600), (3, 512, 512)]
    luma = photo_images("test", channels=1)[0]
    weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    assert (luma[0] - (rgb[0] * weights).sum(0)).abs().max() <= 1 / 255 + 1e-6  # PIL rounds


def test_demo_crops_are_seeded_crops_of_held_out_photographs():
    a = demo_crops(4, 32, generator=torch.Generator().manual_seed(0))
    b = demo_crops(4, 32, generator=torch.Generator().manual_seed(0))
    c = demo_crops(4, 32, generator=torch.Generator().manual_seed(1))
    assert a.shape == (4, 3, 32, 32) and torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="1 to 400 px"):
        demo_crops(1, 401)


def test_options_are_checked():
    with pytest.raises(GenlabError, match="image_size must be between 8 and 256"):
        load_dataset("photos", image_size=300)
    with pytest.raises(GenlabError, match="channels must be one of 1, 3"):
        load_dataset("photos", channels=2)


def test_read_image_round_trips_and_refuses_what_is_not_an_image(tmp_path):
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    x = read_image(tmp_path / "a.png")
    assert x.shape == (3, 5, 7) and torch.equal(
        (x * 255).round().byte(), torch.from_numpy(pixels).permute(2, 0, 1)
    )
    assert read_image(tmp_path / "a.png", channels=1).shape == (1, 5, 7)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "cut.png").write_bytes((tmp_path / "a.png").read_bytes()[:-60])
    for name, message in [
        ("missing.png", "no such file"),
        ("empty.png", "empty file"),
        ("notes.png", "not an image \\(png"),
        ("cut.png", "unreadable image"),
        ("", "not a file"),
    ]:
        with pytest.raises(GenlabError, match=message) as e:
            read_image(tmp_path / name)
        assert "\n" not in str(e.value)
    with pytest.raises(GenlabError, match="larger than 20 pixels"):
        read_image(tmp_path / "a.png", max_pixels=20)
