"""Shared test set-up: data from ../shared/data, CPU threads, no stray files."""

from __future__ import annotations

import os
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
