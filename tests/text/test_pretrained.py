"""Starting from pretrained weights: a local Hugging Face GPT-2 folder (a tiny one made offline
from a config, with a byte-level BPE tokenizer trained here) or another genlab run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from genlab.data import load_dataset
from genlab.errors import GenlabError
from genlab.tokenizers import BPETokenizer, load_tokenizer, open_tokenizer
from test_cli import assert_one_line_error, run_cli
from text_corpus import CORPUS  # no download needed

transformers = pytest.importorskip("transformers")

VOCAB = 300
SMALL = ["-o", "data.block_size=16", "-o", "train.batch_size=8", "-o", "train.sample_n=2"]


def corpus_text() -> str:
    return Path(CORPUS.removeprefix("text:")).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    text = corpus_text()
    return BPETokenizer.train([text[i : i + 5000] for i in range(0, 54000, 5000)], VOCAB)


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory, bpe) -> dict:
    """Two GPT-2 folders with the same weights: one with a `tokenizers` tokenizer.json, one with
    GPT-2's original vocab.json + merges.txt; and one without a tokenizer."""
    root = tmp_path_factory.mktemp("gpt2")
    config = transformers.GPT2Config(
        vocab_size=bpe.vocab_size, n_positions=32, n_embd=24, n_layer=2, n_head=3,
        bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    folders = {name: root / name for name in ("json", "files", "bare")}
    for folder in folders.values():
        model.save_pretrained(folder)  # config.json + model.safetensors
    bpe._tokenizer.save(str(folders["json"] / "tokenizer.json"))
    bpe._tokenizer.model.save(str(folders["files"]))  # vocab.json, merges.txt
    return {**folders, "model": model}


def test_a_model_folders_tokenizer_opens_in_every_layout(gpt2, bpe, tmp_path):
    text = "ROMEO: what light through yonder window breaks? ☃"
    for folder in (gpt2["json"], gpt2["files"]):
        tok = open_tokenizer(folder)
        assert tok.vocab_size == VOCAB
        assert tok.encode(text) == bpe.encode(text)
        assert tok.decode(tok.encode(text)) == text
    from genlab.tokenizers import save_tokenizer

    save_tokenizer(bpe, tmp_path / "mine.json")  # genlab's own file
    assert open_tokenizer(tmp_path / "mine.json").encode(text) == bpe.encode(text)
    with pytest.raises(GenlabError, match="holds no tokenizer"):
        open_tokenizer(gpt2["bare"])
    with pytest.raises(GenlabError, match="no tokenizer file or folder"):
        open_tokenizer(tmp_path / "missing")


def test_generate_reads_a_gpt2_folder_directly(gpt2, capsys):
    args = ["--prompt", "ROMEO:", "--max-new-tokens", "12", "--seed", "1", "--temperature", "1"]
    code, out, err = run_cli(capsys, "generate", f"hf:{gpt2['json']}", *args)
    assert code == 0, err
    from genlab.api import load
    from genlab.generation import GenerationConfig, complete_text

    model = load(f"hf:{gpt2['files']}")
    expected = complete_text(
        model, model.tokenizer, "ROMEO:", GenerationConfig(max_new_tokens=12, seed=1)
    )
    assert out == "ROMEO:" + expected + "\n"
    code, _, err = run_cli(capsys, "generate", f"hf:{gpt2['bare']}", "--prompt", "x")
    assert_one_line_error(code, err, "not a language model run")


@pytest.fixture(scope="module")
def tuned(gpt2, tmp_path_factory):
    """A run started from the GPT-2 folder whose one step cannot move the weights (lr 1e-12)."""
    from genlab.cli import main

    out = tmp_path_factory.mktemp("tuned") / "run"
    args = ["train", "gpt", "--data", CORPUS, "--init-from", f"hf:{gpt2['files']}"]
    args += ["--steps", "1", "--out", out, "-q", "-o", "train.lr=1e-12", *SMALL]
    assert main([str(a) for a in args]) == 0
    return out


def test_init_from_a_gpt2_folder_keeps_its_weights_and_tokenizer(tuned, gpt2, bpe):
    from genlab.api import load
    from genlab.text.hf import import_gpt

    config = json.loads((tuned / "config.json").read_text())
    assert config["init_from"] == f"hf:{gpt2['files']}"
    assert config["model_config"]["block_size"] == 32  # GPT-2's positions, not the window
    assert load_tokenizer(tuned / "tokenizer.json").encode("KING HENRY") == bpe.encode("KING HENRY")
    model, source = load(tuned), import_gpt(gpt2["files"])
    theirs = source.state_dict()
    assert theirs.keys() == model.state_dict().keys()
    for name, ours in model.state_dict().items():  # Adam's first step moves a weight <= lr = 1e-12
        assert torch.allclose(ours, theirs[name], atol=1e-7), name
    ids = torch.tensor([bpe.encode("ROMEO: what light")])
    with torch.no_grad():  # two float32 implementations: a few ulps of O(1) logits (~1e-7)
        assert (gpt2["model"](ids).logits - model.logits(ids)).abs().max() < 1e-5


def test_fine_tuning_a_run_lowers_the_loss_and_resumes(tuned, tmp_path, capsys):
    run = tmp_path / "more"
    train = ["train", "gpt", "--data", CORPUS, "--out", run, "-q", *SMALL, "-o", "train.lr=3e-3"]
    code, _, err = run_cli(capsys, *train, "--init-from", tuned, "--steps", "40")
    assert code == 0, err
    losses = {}
    for name in (tuned, run):
        code, _, err = run_cli(capsys, "evaluate", name, "--split", "val")
        assert code == 0, err
        losses[name] = json.loads((name / "eval.json").read_text())["val_loss"]
    assert losses[run] < losses[tuned] - 0.5  # 40 steps from a random GPT-2
    code, _, err = run_cli(capsys, "train", "gpt", "--out", run, "--resume", "--steps", "42", "-q")
    assert code == 0, err
    assert json.loads((run / "config.json").read_text())["train"]["steps"] == 42


def test_init_from_errors_are_one_line(gpt2, tuned, tmp_path, capsys):
    base = ["train", "gpt", "--data", CORPUS, "--steps", "1", "-q", *SMALL]
    hf = f"hf:{gpt2['json']}"
    cases = [
        (["--init-from", hf, "-o", "data.tokenizer=char"], "leave out data.tokenizer"),
        (["--init-from", hf, "-o", "data.block_size=64"], "longer than"),
        (["--init-from", hf, "-o", "n_embd=48"], "do not fit"),
        (["--init-from", hf, "--preset", "gpu"], "may not set model_config"),
        (["--init-from", f"hf:{gpt2['bare']}"], "has no tokenizer"),
        (["--init-from", f"hf:{tmp_path / 'none'}"], "not a Hugging Face model folder"),
        (["--init-from", tmp_path / "none"], "does not exist"),
    ]
    for i, (extra, message) in enumerate(cases):
        out = tmp_path / f"run{i}"
        code, _, err = run_cli(capsys, *base, "--out", out, *extra)
        assert_one_line_error(code, err, message)
        assert not out.exists()  # nothing made before the check
    code, _, err = run_cli(
        capsys, "train", "lstm", "--data", CORPUS, "--init-from", hf, "--out", tmp_path / "l"
    )
    assert_one_line_error(code, err, "not a lstm")
    code, _, err = run_cli(
        capsys, "train", "rnn", "--data", CORPUS, "--init-from", tuned, "--out", tmp_path / "r"
    )
    assert_one_line_error(code, err, "holds a gpt run; rnn starts from a rnn run")
    code, _, err = run_cli(capsys, "train", "gpt", "--out", tuned, "--resume", "--init-from", hf)
    assert_one_line_error(code, err, "--resume continues a run as configured")


def test_a_ready_tokenizer_is_a_data_option(gpt2, bpe):
    data = load_dataset(CORPUS, "val", tokenizer=str(gpt2["json"]), block_size=16)
    assert data.spec.vocab_size == VOCAB
    x, _ = data.batch(torch.tensor([0]))
    assert x[0].tolist() == bpe.encode(corpus_text()[54000:])[:16]
    with pytest.raises(GenlabError, match="vocab_size comes with a tokenizer file"):
        load_dataset(CORPUS, "val", tokenizer=str(gpt2["json"]), vocab_size=500)
    with pytest.raises(GenlabError, match="no tokenizer file or folder"):
        load_dataset(CORPUS, "val", tokenizer="./missing.json")


def test_export_of_a_bpe_run_carries_a_hugging_face_tokenizer(tuned, tmp_path, capsys, bpe):
    code, _, err = run_cli(capsys, "export", tuned, "--out", tmp_path / "hf")
    assert code == 0, err
    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "hf/tokenizer.json"))
    assert fast("KING RICHARD, my lord")["input_ids"] == bpe.encode("KING RICHARD, my lord")
