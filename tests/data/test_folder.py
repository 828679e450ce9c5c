"""folder:PATH: images read recursively, corrupt files skipped with one warning, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import load_dataset
from genlab.errors import GenlabError


def _save(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    folder = tmp_path / "pictures"
    for i in range(20):
        _save(folder / f"img{i:02d}.png", (10 * i, 100, 200))
    _save(folder / "nested" / "deep.JPG", (255, 0, 0), size=(64, 128))
    _save(folder / "nested" / "wide.bmp", (0, 255, 0), size=(90, 20))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_reads_images_recursively_resized_and_split(pictures):
    splits = {
        s: load_dataset(f"folder:{pictures}", s, image_size=16) for s in ("train", "val", "test")
    }
    assert [len(d) for d in splits.values()] == [20, 1, 1]
    x = splits["train"].batch(torch.arange(20))
    assert isinstance(x, torch.Tensor) and x.shape == (20, 3, 16, 16)
    assert splits["train"].spec.shape == (3, 16, 16) and splits["train"].spec.num_classes == 0
    everything = torch.cat([d.x for d in splits.values()])
    centres = everything[:, :, 8, 8].int()  # (22, 3)
    red, green = torch.tensor([255, 0, 0]), torch.tensor([0, 255, 0])
    for colour in (red, green):  # the nested files were found (JPEG is lossy: near enough)
        assert (centres - colour).abs().amax(dim=1).min() <= 3
    grey = load_dataset(f"folder:{pictures}", "val", image_size=8, channels=1)
    assert grey.x.shape == (1, 1, 8, 8)
    again = load_dataset(f"folder:{pictures}", "val", image_size=16)
    assert torch.equal(again.x, splits["val"].x)


def test_corrupt_files_are_skipped_with_one_warning(pictures):
    (pictures / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (pictures / "nested" / "empty.jpg").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 2 of 24") as caught:
        total = sum(
            len(load_dataset(f"folder:{pictures}", s, image_size=12))
            for s in ("train", "val", "test")
        )
    assert total == 22
    assert len(caught) == 1


def test_missing_empty_and_unreadable_folders_are_errors(tmp_path):
    with pytest.raises(GenlabError, match="no such folder"):
        load_dataset(f"folder:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenlabError, match="no image files"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"nope")
    with pytest.raises(GenlabError, match="none of its 1 image files could be read"):
        load_dataset(f"folder:{bad}")


def test_tiny_folder_has_only_a_train_split(tmp_path):
    _save(tmp_path / "one" / "a.png", (1, 2, 3))
    assert len(load_dataset(f"folder:{tmp_path / 'one'}", "train", image_size=4)) == 1
    with pytest.raises(GenlabError, match="too few for a val split"):
        load_dataset(f"folder:{tmp_path / 'one'}", "val", image_size=4)


def test_centre_crop_keeps_the_middle(tmp_path):
    image = np.zeros((10, 30, 3), dtype=np.uint8)
    image[:, 10:20] = 255  # a white vertical band in the middle third
    Image.fromarray(image).save(tmp_path / "band.png")
    (x,) = load_dataset(f"folder:{tmp_path}", "train", image_size=10).x
    assert x.shape == (3, 10, 10) and int(x[:, :, 2:8].min()) > 200


def test_transparency_is_composited_over_black_without_warnings(tmp_path):
    rgba = Image.new("RGBA", (8, 8), (255, 255, 255, 0))
    rgba.save(tmp_path / "clear.png")
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    palette.save(tmp_path / "palette.gif", transparency=1)
    data = load_dataset(f"folder:{tmp_path}", "train", image_size=8)
    assert data.x.shape == (2, 3, 8, 8) and int(data.x.max()) == 0
