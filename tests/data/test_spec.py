"""DataSpec: each kind of data is a Modality that says which model-config values it implies."""

import dataclasses

import pytest

from genlab.contract import config_for_data
from genlab.data.base import MODALITIES, DataSpec
from genlab.data.text import CHUNKING, TOKENIZER_BUILDERS
from genlab.tokenizers import KINDS


def test_each_kind_fills_the_config_fields_it_knows():
    image = DataSpec("image", (1, 8, 8), num_classes=10)
    assert image.config_values() == {"data_shape": (1, 8, 8), "num_classes": 10}
    text = DataSpec("text", (32,), levels=0, vocab_size=65)
    assert text.config_values() == {
        "data_shape": (32,),
        "num_classes": 0,
        "vocab_size": 65,
        "block_size": 32,
        "bar_length": 0,  # text has no bars
    }
    music = DataSpec("text", (32,), vocab_size=91, extra={"steps_per_bar": 16, "voices": 4})
    assert music.config_values()["bar_length"] == 64
    assert image.modality.discrete and text.modality.tokens
    assert not DataSpec("vector", (2,), levels=0).modality.discrete
    audio = DataSpec("audio", (1, 4096), sample_rate=8000, extra={"local_channels": 2})
    assert audio.config_values() == {
        "data_shape": (1, 4096),
        "num_classes": 0,
        "sample_rate": 8000,
        "local_channels": 2,
        "local_hop": 0,
    }
    assert audio.modality.discrete
    environment = DataSpec("environment", (4,), extra={"num_actions": 2, "env": "CartPole-v1"})
    assert environment.config_values() == {
        "data_shape": (4,),
        "num_actions": 2,
        "env": "CartPole-v1",
    }
    assert set(MODALITIES) == {"image", "vector", "text", "audio", "environment"}
    with pytest.raises(ValueError, match="unknown data kind 'video'"):
        DataSpec("video", (3, 8, 16, 16))


def test_config_for_data_keeps_the_fields_a_config_declares():
    @dataclasses.dataclass
    class Config:
        vocab_size: int = 0
        block_size: int = 8
        width: int = 4

    spec = DataSpec("text", (16,), levels=0, vocab_size=50)
    assert config_for_data(Config(), spec) == Config(vocab_size=50, block_size=16, width=4)
    image = DataSpec("image", (3, 4, 4))
    assert config_for_data(Config(), image) == Config()  # an image has no vocabulary


def test_every_tokenizer_kind_knows_how_it_is_trained_and_chunked():
    assert set(TOKENIZER_BUILDERS) == set(KINDS) == set(CHUNKING)
