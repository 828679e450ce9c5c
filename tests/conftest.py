"""Shared test set-up: data from ../shared/data, CPU threads, no stray files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Tests and CI read data files from ../shared/data (GENLAB_DATA_DIR); never download.
if "GENLAB_DATA_DIR" not in os.environ and (REPO.parent / "shared" / "data").is_dir():
    os.environ["GENLAB_DATA_DIR"] = str(REPO.parent / "shared" / "data")

# Tiny test models are fastest on one thread, and one thread cannot be slowed down by OpenMP
# spin-waiting when another process holds the second core.
torch.set_num_threads(1)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


@pytest.fixture(scope="session", autouse=True)
def metric_cache(tmp_path_factory) -> Iterator[Path]:
    """GENLAB_CACHE_DIR -> a fresh folder; GENLAB_WEIGHTS_DIR unset (never the user's files)."""
    folder = tmp_path_factory.mktemp("genlab-cache")
    saved = {k: os.environ.get(k) for k in ("GENLAB_CACHE_DIR", "GENLAB_WEIGHTS_DIR")}
    os.environ["GENLAB_CACHE_DIR"] = str(folder)
    os.environ.pop("GENLAB_WEIGHTS_DIR", None)
    try:
        yield folder
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def digits_extractor(metric_cache):
    """The digit classifier, trained once per test session (about a minute on one core)."""
    from genlab.metrics.digits import load_digits_extractor

    return load_digits_extractor()
