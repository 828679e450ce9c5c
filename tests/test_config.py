from dataclasses import dataclass, field
from typing import Literal

import pytest

from genlab.config import apply_overrides, from_dict, parse_overrides, to_dict
from genlab.errors import GenlabError


@dataclass
class Inner:
    width: int = 8
    rate: float = 0.5


@dataclass
class Cfg:
    latent_dim: int = 16
    beta: float = 1.0
    arch: Literal["mlp", "conv"] = "conv"
    shape: tuple[int, ...] = (1, 28, 28)
    flag: bool = False
    name: str | None = None
    inner: Inner = field(default_factory=Inner)

    def validate(self):
        if self.latent_dim < 1:
            raise ValueError("latent_dim must be >= 1")


def test_overrides_are_parsed_with_the_field_type():
    cfg = apply_overrides(
        Cfg(),
        parse_overrides(
            ["latent_dim=4", "beta=2.5", "arch=mlp", "shape=3,32,32", "flag=true", "inner.width=3"]
        ),
    )
    assert cfg.latent_dim == 4 and cfg.beta == 2.5 and cfg.arch == "mlp"
    assert cfg.shape == (3, 32, 32) and cfg.flag is True and cfg.inner.width == 3
    assert apply_overrides(Cfg(), {"name": "none"}).name is None
    assert apply_overrides(Cfg(), {"name": "x"}).name == "x"


@pytest.mark.parametrize(
    "override, message",
    [
        ("latent_dimm=3", "did you mean: latent_dim"),
        ("latent_dim=abc", "expected an integer"),
        ("arch=rnn", "expected one of mlp, conv"),
        ("flag=maybe", "expected true or false"),
        ("inner.depth=2", "unknown option 'inner.depth'"),
        ("beta.x=1", "has no sub-options"),
        ("latent_dim=0", "latent_dim must be >= 1"),
    ],
)
def test_bad_overrides_are_one_clear_error(override, message):
    with pytest.raises(GenlabError, match=message.replace("(", r"\(")):
        apply_overrides(Cfg(), parse_overrides([override]))


def test_override_without_equals_sign():
    with pytest.raises(GenlabError, match="expected key=value"):
        parse_overrides(["latent_dim"])


def test_round_trip_through_a_dict_is_strict():
    cfg = apply_overrides(Cfg(), {"shape": "2,2", "inner.rate": "0.1"})
    assert from_dict(Cfg, to_dict(cfg)) == cfg
    with pytest.raises(GenlabError, match="unknown option 'bogus'"):
        from_dict(Cfg, {**to_dict(cfg), "bogus": 1})
    with pytest.raises(GenlabError, match="bad value"):
        from_dict(Cfg, {**to_dict(cfg), "latent_dim": "16"})
