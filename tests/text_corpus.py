"""A text dataset for tests that needs no download and no shared folder.

tests/text/corpus.txt is the first 60,000 characters of tinyshakespeare. genlab caches its token
ids in $GENLAB_CACHE_DIR, not next to the text, but the tests still read a copy in a private
temporary folder (removed at exit): the repository stays clean even when an older genlab (which
wrote caches next to the text) runs these tests, e.g. to check that a test fails before a fix.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

_folder = Path(tempfile.mkdtemp(prefix="genlab-test-corpus-"))
atexit.register(shutil.rmtree, _folder, ignore_errors=True)
shutil.copyfile(Path(__file__).parent / "text" / "corpus.txt", _folder / "corpus.txt")

CORPUS = f"text:{_folder / 'corpus.txt'}"  # the dataset name for load_dataset and --data
