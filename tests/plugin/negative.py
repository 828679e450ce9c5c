"""An image-to-image model that is not part of genlab (a contract.Translator), for the server's
image route and the web page's upload tab: registered only inside the tests that use it.

Its translation is simple enough to check pixel by pixel:

    y = gain * ((1 - amount) * image + amount * (1 - image)) * mean colour of style

then each pixel repeated `scale` times along both axes (a nearest-neighbour "upscale"), so an
answer's size, its pixels and the effect of each option and of the style are all known.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genlab.contract import option


@dataclasses.dataclass(frozen=True)
class NegativeConfig:
    data_shape: tuple[int, ...] = (3, 16, 16)


class Negative(nn.Module):
    """The photographic negative of an image, tinted by a style image's mean colour."""

    Config = NegativeConfig
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    translate_inputs: ClassVar[tuple[str, ...]] = ("image", "style")

    @dataclasses.dataclass(frozen=True)
    class TranslateOptions:
        amount: float = option(1.0, help="0 = the image, 1 = its negative", ge=0.0, le=1.0)
        scale: int = option(1, help="pixel repetitions per axis", ge=1, le=4)
        slow: bool = option(False, help="a reference path (the CLI only)", serve=False)

    def __init__(self, config: NegativeConfig):
        super().__init__()
        self.config = config
        self.gain = nn.Parameter(torch.ones(()))

    def translate(
        self, image: Tensor, *, style: Tensor, amount: float = 1.0, scale: int = 1, slow=False
    ) -> Tensor:
        # image (B, 3, H, W), style (B or 1, 3, h, w) -> (B, 3, scale * H, scale * W)
        if min(image.shape[-2:]) < 2:  # as a real model refuses what it cannot take
            raise ValueError(f"image: at least 2x2 pixels, got {image.shape[-1]}x{image.shape[-2]}")
        tint = style.mean(dim=(2, 3), keepdim=True)  # (B or 1, 3, 1, 1)
        y = self.gain * ((1 - amount) * image + amount * (1 - image)) * tint
        return y.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3).clamp(0, 1)

    def loss(self, batch: Any) -> dict[str, Tensor]:
        x = batch[0] if isinstance(batch, tuple | list) else batch
        y = self.translate(x, style=torch.ones_like(x[:1]))
        return {"loss": (y - (1 - x)).pow(2).mean()}

    def sample(self, n: int, *, generator: Any = None) -> Tensor:
        shape = (n, *self.config.data_shape)
        x = torch.rand(shape, generator=generator, device=self.gain.device)
        return self.translate(x, style=torch.ones_like(x[:1]))


def write_run(folder: Path, *, name: str = "negative", gain: float = 1.0) -> Path:
    """A run folder of this model (config.json and its one weight), as training would leave
    it: `name` is the model's registered name, under which the test registers this class."""
    from genlab.training.checkpoint import save_weights

    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model": name, "model_config": {}}))
    save_weights(folder / "model.safetensors", {"gain": torch.tensor(gain)})
    return folder
