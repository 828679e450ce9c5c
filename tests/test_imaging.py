import numpy as np
import torch
from PIL import Image

from genlab.imaging import make_grid, save_image


def test_grid_places_each_image_in_row_major_order():
    images = torch.stack([torch.full((1, 2, 3), i / 10) for i in range(5)])  # (5, 1, 2, 3)
    grid = make_grid(images, nrow=2, padding=1, pad_value=1.0)
    assert grid.shape == (1, 3 * (2 + 1) + 1, 2 * (3 + 1) + 1)
    for i in range(5):
        r, c = divmod(i, 2)
        top, left = 1 + r * 3, 1 + c * 4
        assert torch.all(grid[:, top : top + 2, left : left + 3] == i / 10)
    assert torch.all(grid[:, 0, :] == 1.0)  # padding


def test_saved_png_round_trips_to_uint8_levels(tmp_path):
    image = torch.tensor([[[0.0, 0.5, 1.0]]])  # (1, 1, 3)
    save_image(image, tmp_path / "x.png")
    with Image.open(tmp_path / "x.png") as png:
        assert np.asarray(png).tolist() == [[0, 128, 255]]
    rgb = torch.rand(4, 3, 5, 5)
    save_image(rgb, tmp_path / "grid.png", nrow=4)
    with Image.open(tmp_path / "grid.png") as png:
        assert png.mode == "RGB"
