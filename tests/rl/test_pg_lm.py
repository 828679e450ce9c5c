"""Policy-gradient fine-tuning of a language model (pg-lm): the rewards on fixed texts, the
leave-one-out baseline, the KL penalty, a tiny run that raises its reward, and its errors."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest
import torch

from genlab.rl.pg_lm import PolicyGradientLM, PolicyGradientLMConfig, leave_one_out
from genlab.rl.rewards import keyword, line_length, rhyme
from test_cli import assert_one_line_error, run_cli
from text_corpus import CORPUS

SETTINGS = SimpleNamespace(keyword="love", line_length=10)


def test_rewards_on_fixed_texts():
    text = "Love is love.\nLOVE me, lovely one\n"  # "lovely" is not the word
    assert keyword(text, SETTINGS) == pytest.approx(100 * 3 / len(text))
    assert keyword("", SETTINGS) == 0.0
    # complete lines of 10 and 5 characters against 10: mean |difference| / 10 = 0.25
    assert line_length("abcdefghij\nabcde\nunfinished", SETTINGS) == pytest.approx(-0.25)
    assert line_length("no newline at all", SETTINGS) == -1.0
    assert rhyme("the night\nthe light\nthe day\n", SETTINGS) == pytest.approx(0.5)
    assert rhyme("one line\n", SETTINGS) == 0.0


def test_leave_one_out_baseline():
    returns = torch.tensor([[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]])
    expected = torch.tensor([[1 - 4.0, 2 - 3.5, 6 - 1.5], [0 - 1.5, 0 - 1.5, 3 - 0.0]])
    assert torch.allclose(leave_one_out(returns), expected)
    assert torch.allclose(leave_one_out(returns).sum(1) * 2 / 3, returns.sum(1) - returns.sum(1))


def tiny(**kw) -> PolicyGradientLM:
    from genlab.data import load_dataset

    data = load_dataset(CORPUS, "train", block_size=12)
    torch.manual_seed(0)
    config = PolicyGradientLMConfig(
        vocab_size=data.spec.vocab_size, data_shape=(12,), prompt_length=4, length=8, k=2,
        base_config={"n_layer": 1, "n_head": 2, "n_embd": 16}, **kw,
    )  # fmt: skip
    model = PolicyGradientLM(config)
    model.bind_data(data.spec)
    return model, data


def test_the_kl_penalty_is_zero_at_the_start_and_the_log_ratio_after():
    model, data = tiny(kl_coef=0.5)
    batch = data.batch(torch.arange(3))
    torch.manual_seed(1)
    out = model.loss(batch)
    assert out["kl"].item() == 0.0  # the policy is its reference
    assert out["return"].item() == pytest.approx(out["reward"].item())
    with torch.no_grad():
        for p in model.policy.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(2)))
    sequence = torch.cat([batch[0][:, :4], torch.randint(data.spec.vocab_size, (3, 8))], 1)
    log_p, _ = model.token_log_probs(model.policy, sequence)
    log_ref, _ = model.token_log_probs(model.reference, sequence)
    by_hand = (
        model.policy.logits(sequence[:, :-1]).log_softmax(-1)[:, -8:]
        - model.reference.logits(sequence[:, :-1]).log_softmax(-1)[:, -8:]
    ).gather(-1, sequence[:, -8:, None])[..., 0]
    assert torch.allclose(log_p - log_ref, by_hand, atol=1e-6)
    torch.manual_seed(1)
    after = model.loss(batch)
    assert after["kl"].item() != 0.0
    assert after["return"].item() == pytest.approx(
        after["reward"].item() - 0.5 * after["kl"].item(), abs=1e-5
    )


def test_only_the_policy_learns():
    model, data = tiny(kl_coef=1.0)
    with torch.no_grad():  # a policy away from its reference: the samples' returns differ
        for p in model.policy.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(2)))
    torch.manual_seed(1)
    model.loss(data.batch(torch.arange(4)))["loss"].backward()
    assert all(p.grad is None for p in model.reference.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.policy.parameters())


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    from genlab.cli import main

    out = tmp_path_factory.mktemp("pg") / "gpt"
    args = ["train", "gpt", "--data", CORPUS, "--steps", "60", "--out", str(out), "-q"]
    for option in ("n_layer=1", "n_head=2", "n_embd=32", "data.block_size=32",
                   "train.eval_every=60", "train.sample_every=60"):  # fmt: skip
        args += ["-o", option]
    assert main(args) == 0
    return out


def test_a_tiny_run_raises_its_reward(source, tmp_path, capsys):
    """40 steps toward lines of 20 characters: the mean reward of the last 10 steps is above
    that of the first 10; the KL to the start grows; generate works on the run."""
    out = tmp_path / "pg"
    code, _, err = run_cli(
        capsys, "train", "pg-lm", "--init-from", source, "--data", CORPUS, "--out", out,
        "--steps", "40", "-q", "-o", "reward=line_length", "-o", "line_length=20", "-o", "prompt_length=8",
        "-o", "length=24",
        "-o", "train.lr=1e-3", "-o", "train.log_every=1", "-o", "train.eval_every=40",
        "-o", "train.sample_every=40",
    )  # fmt: skip
    assert code == 0, err
    with open(out / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["reward"]]
    rewards = [float(r["reward"]) for r in rows]
    assert len(rewards) == 40
    assert sum(rewards[-10:]) > sum(rewards[:10])
    assert float(rows[-1]["kl"]) > float(rows[0]["kl"])
    code, text, err = run_cli(capsys, "generate", out, "--prompt", "the", "--max-new-tokens", "20")
    assert code == 0 and text.startswith("the"), err


def test_pg_lm_errors_are_one_line(source, tmp_path, capsys):
    out = tmp_path / "x"
    cases = [
        (["--data", CORPUS], "--init-from"),  # from scratch there is nothing to fine-tune
        (["--init-from", source, "--data", CORPUS, "-o", "reward=wit"], "reward"),
        (["--init-from", source, "--data", CORPUS, "-o", "length=64"], "prompt_length + length"),
    ]
    for args, words in cases:
        code, _, err = run_cli(capsys, "train", "pg-lm", *args, "--out", out, "--steps", "2", "-q")
        assert_one_line_error(code, err, words)
        assert not out.exists()
