"""Language models from the command line: train, generate (streamed), evaluate, export."""

from __future__ import annotations

import json
import math

import pytest
import torch

from test_cli import assert_one_line_error, run_cli
from text_corpus import CORPUS  # no download needed

TINY = ["-o", "n_layer=1", "-o", "n_head=2", "-o", "n_embd=16", "-o", "data.block_size=16"]


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory):
    from genlab.cli import main

    out = tmp_path_factory.mktemp("text") / "gpt"
    args = ["train", "gpt", "--data", CORPUS, "--steps", "30", "--out", out, "-q"]
    assert main([str(a) for a in [*args, *TINY, "-o", "train.sample_every=30"]]) == 0
    return out


def test_train_writes_the_tokenizer_and_text_samples(gpt_run):
    assert (gpt_run / "tokenizer.json").is_file()
    samples = list((gpt_run / "samples").glob("*.txt"))
    assert samples and len(samples[0].read_text()) > 16


def test_generate_streams_the_same_text_with_and_without_the_cache(gpt_run, capsys):
    args = ["generate", gpt_run, "--prompt", "ROMEO:", "--max-new-tokens", "40", "--seed", "3"]
    code, cached, err = run_cli(capsys, *args, "--top-k", "10")
    assert code == 0, err
    assert cached.startswith("ROMEO:") and len(cached) > len("ROMEO:") + 20
    code, uncached, err = run_cli(capsys, *args, "--top-k", "10", "--no-cache")
    assert code == 0, err
    assert uncached == cached
    code, other, _ = run_cli(capsys, *args[:-1], "4", "--top-k", "10")
    assert other != cached


def test_bad_prompts_and_settings_are_one_line_errors(gpt_run, capsys):
    code, _, err = run_cli(capsys, "generate", gpt_run, "--prompt", "naïve ☃")
    assert_one_line_error(code, err, "characters not in the vocabulary")
    code, _, err = run_cli(capsys, "generate", gpt_run, "--prompt", "")
    assert_one_line_error(code, err, "the prompt is empty")
    code, _, err = run_cli(capsys, "generate", gpt_run, "--top-p", "1.5")
    assert_one_line_error(code, err, "top_p")
    code, _, err = run_cli(capsys, "generate", gpt_run, "--temperature", "-1")
    assert_one_line_error(code, err, "temperature")


def test_a_prompt_longer_than_the_context_keeps_its_end(gpt_run, capsys):
    long = "To be, or not to be, that is the question: " * 3  # > block_size 16
    code, out, err = run_cli(capsys, "generate", gpt_run, "--prompt", long, "--seed", "0")
    assert code == 0, err
    assert out.startswith(long)


def test_evaluate_reports_loss_perplexity_and_bits_per_char(gpt_run, capsys):
    code, _, err = run_cli(capsys, "evaluate", gpt_run, "--split", "val")
    assert code == 0, err
    result = json.loads((gpt_run / "eval.json").read_text())
    loss = result["val_loss"]
    assert 0 < loss < math.log(65) + 0.5
    assert result["val_perplexity"] == pytest.approx(math.exp(loss))
    assert result["val_bits_per_char"] == pytest.approx(loss / math.log(2))  # char tokens


def test_export_hf_gives_the_same_logits(gpt_run, capsys, tmp_path):
    transformers = pytest.importorskip("transformers")
    code, _, err = run_cli(capsys, "export", gpt_run, "--out", tmp_path / "hf")
    assert code == 0, err
    assert (tmp_path / "hf" / "genlab_tokenizer.json").is_file()
    from genlab.api import load

    model = load(gpt_run)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    capsys.readouterr()  # transformers' loading progress bar
    ids = torch.tensor([model.tokenizer.encode("ROMEO: what lig")])
    with torch.no_grad():  # two float32 implementations: a few ulps of O(1) logits (~1e-7)
        assert (hf(ids).logits - model.logits(ids)).abs().max() < 1e-5
    # the char vocabulary as transformers reads it (it used to load an empty one)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    text = "ROMEO: what light\n  through yonder?"
    assert len(tokenizer) == model.tokenizer.vocab_size == 59
    assert tokenizer(text)["input_ids"] == model.tokenizer.encode(text)
    assert tokenizer.decode(model.tokenizer.encode(text)) == text
    code, _, err = run_cli(capsys, "export", gpt_run, "--out", tmp_path / "hf")
    assert_one_line_error(code, err, "not empty")
    code, _, err = run_cli(capsys, "export", gpt_run, "--out", tmp_path / "x", "--format", "onnx")
    assert_one_line_error(code, err, "format 'hf' only")


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn"])
def test_recurrent_models_train_and_generate(name, tmp_path, capsys):
    run = tmp_path / name
    tiny = ["-o", "hidden=16", "-o", "n_embd=16", "-o", "data.block_size=16"]
    code, _, err = run_cli(
        capsys,
        "train",
        name,
        "--data",
        CORPUS,
        "--steps",
        "5",
        "--out",
        run,
        "-q",
        *tiny,
    )
    assert code == 0, err
    code, out, err = run_cli(capsys, "generate", run, "--prompt", "KING", "--max-new-tokens", "30")
    assert code == 0, err
    assert out.startswith("KING") and len(out) >= 20


def test_gpu_preset_sets_the_window_and_the_model(tmp_path, capsys):
    run = tmp_path / "preset"
    small = ["-o", "n_layer=1", "-o", "n_embd=12", "-o", "n_head=2", "-o", "train.batch_size=2"]
    code, _, err = run_cli(
        capsys, "train", "gpt", "--data", CORPUS, "--preset", "gpu", "--steps", "1",
        "--out", run, "-q", *small, "-o", "train.sample_n=2",
    )  # fmt: skip
    assert code == 0, err
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["options"]["block_size"] == 256
    assert config["model_config"]["block_size"] == 256  # the model's context follows the data
    assert config["model_config"]["dropout"] == 0.2 and config["model_config"]["n_embd"] == 12
