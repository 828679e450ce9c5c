"""Tiny trained runs for the serving tests, made once per test session (a few seconds)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

from text_corpus import CORPUS

TINY = {
    # an image GAN with an explicit latent: its requests are micro-batched
    "dcgan": ("digits", ["z_dim=4", "g_width=4", "d_width=4"]),
    # the same, with one weight over torch's 32768-element grain size (40 x 1024): loading it
    # runs a parallel (OpenMP) copy, as loading any real model does
    "dcgan-wide": ("digits", ["z_dim=40", "g_width=64", "d_width=4"]),
    # conditional: takes a label
    "cgan": ("digits", ["z_dim=4", "embed_dim=3", "g_width=4", "d_width=4"]),
    # no explicit latent: each request samples alone
    "pixelcnn": ("digits", ["hidden=4", "blocks=1", "head=4"]),
    # 2-D vectors, not images, and a temperature
    "realnvp": ("toy2d:moons", ["hidden=8", "blocks=1", "couplings=4"]),
    # a language model
    "gpt": (CORPUS, ["n_layer=1", "n_head=2", "n_embd=16", "data.block_size=16"]),
    # a registered variant ("lstm" is the class RNN with cell=lstm)
    "lstm": (CORPUS, ["n_layer=1", "hidden=16", "n_embd=16", "data.block_size=16"]),
}

_root = Path(tempfile.mkdtemp(prefix="genlab-serve-runs-"))
atexit.register(shutil.rmtree, _root, ignore_errors=True)


@cache
def run(name: str) -> Path:
    """The run directory of a tiny `name` model trained for 2 steps."""
    from genlab.cli import main

    data, options = TINY[name]
    out = _root / name
    model = name.removesuffix("-wide")
    args = ["train", model, "--data", data, "--steps", "2", "--out", str(out), "-q"]
    for option in [*options, "train.batch_size=8", "train.sample_n=4"]:
        args += ["-o", option]
    code = main(args)
    assert code == 0, f"training the tiny {name} failed"
    return out
