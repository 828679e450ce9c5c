"""The tokenizer as a run asset (contract.RunAssets), for every model of token sequences.

A model of token data (the language models, MusicVAE) encodes and decodes with the tokenizer of
the data it trained on. This mixin makes that tokenizer a run asset: bound from the training
data's spec (`spec.extra["tokenizer"]`), saved as the run's tokenizer.json, read back from a run
folder or from a Hugging Face model folder's own tokenizer files (genlab.tokenizers
.open_tokenizer reads both), and named as the data option a run starting from (or resuming) that
folder must read its data with. Shared code so that no family imports another for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genlab.data.base import DataSpec
from genlab.errors import GenlabError

TOKENIZER = "tokenizer.json"  # a run's tokenizer, beside its config.json
# the tokenizer files of a Hugging Face model folder (genlab.tokenizers.open_tokenizer reads them;
# genlab_tokenizer.json is what `genlab export` writes beside a character or word model)
HF_TOKENIZER_FILES = (TOKENIZER, f"genlab_{TOKENIZER}", "vocab.json")


class TokenizerAssets:
    """bind_data / save_assets / load_assets / data_options for a model's `tokenizer`."""

    tokenizer: Any = None  # genlab.tokenizers.Tokenizer once bound

    def bind_data(self, spec: DataSpec) -> None:
        """Encode and decode with the training data's tokenizer (None: the data has none)."""
        self.tokenizer = spec.extra.get("tokenizer")

    def save_assets(self, folder: Path) -> None:
        """Write the tokenizer as the run's tokenizer.json (nothing when none is bound)."""
        from genlab.tokenizers import save_tokenizer

        if self.tokenizer is not None:
            save_tokenizer(self.tokenizer, Path(folder) / TOKENIZER)

    def load_assets(self, folder: Path) -> None:
        """Read the tokenizer of a run folder or of a Hugging Face model folder; a folder
        without one leaves the model as it was."""
        from genlab.tokenizers import open_tokenizer

        source = _tokenizer_source(Path(folder))
        if source is not None:
            self.tokenizer = open_tokenizer(source)

    @classmethod
    def data_options(cls, folder: Path) -> dict[str, Any]:
        """{"tokenizer": path}: the data of a run starting from (or resuming) `folder` is read
        with the folder's tokenizer (a run's tokenizer.json, a Hugging Face folder itself);
        {} for a fixed vocabulary that no data trains (the music events): the data brings the
        same one."""
        from genlab.tokenizers import KINDS, open_tokenizer

        source = _tokenizer_source(Path(folder))
        if source is None:
            raise GenlabError(f"{folder} has no tokenizer to read the text with")
        if open_tokenizer(source).kind not in KINDS:
            return {}
        return {"tokenizer": str(source.resolve())}


def _tokenizer_source(folder: Path) -> Path | None:
    """Where the tokenizer of `folder` is, as genlab.tokenizers.open_tokenizer reads it: a run's
    tokenizer.json, or a Hugging Face model folder itself when it holds tokenizer files; None
    when there is none."""
    if _is_hugging_face(folder):
        return folder if any((folder / n).is_file() for n in HF_TOKENIZER_FILES) else None
    return folder / TOKENIZER if (folder / TOKENIZER).is_file() else None


def _is_hugging_face(folder: Path) -> bool:
    """A Hugging Face model folder: its config.json names a `model_type` (a run's names the
    genlab `model` and its `model_config`)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(config, dict) and "model_type" in config
