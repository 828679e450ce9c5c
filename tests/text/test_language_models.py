"""Language models: causality, the KV cache and carried RNN state equal the full forward pass,
generation is the same with and without the cache, Hugging Face GPT-2 export/import."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from genlab.errors import GenlabError
from genlab.registry import config_from, default_config, model_class
from genlab.text.gpt import GPT, GPTConfig

V = 23


def build(name: str, **kw):
    torch.manual_seed(0)
    if name.startswith("gpt"):
        positions = "rotary" if name == "gpt-rotary" else "learned"
        cfg = {"vocab_size": V, "block_size": 16, "n_layer": 2, "n_head": 2, "n_embd": 16}
        return GPT(GPTConfig(**{**cfg, "positions": positions, **kw})).eval()
    cfg = {"vocab_size": V, "block_size": 16, "n_layer": 2, "hidden": 12, "n_embd": 12}
    return model_class(name)(config_from(name, {**cfg, **kw})).eval()


NAMES = ["gpt", "gpt-rotary", "rnn", "gru", "lstm"]


@pytest.mark.parametrize("name", NAMES)
def test_changing_token_t_never_changes_logits_before_t(name):
    model = build(name)
    ids = torch.randint(V, (2, 12), generator=torch.Generator().manual_seed(1))
    base = model.logits(ids)
    for t in (0, 5, 11):
        changed = ids.clone()
        changed[:, t] = (changed[:, t] + 1) % V
        out = model.logits(changed)
        assert torch.equal(out[:, :t], base[:, :t]), f"logits before {t} changed"
        assert not torch.allclose(out[:, t], base[:, t]), f"logits at {t} ignore token {t}"


@pytest.mark.parametrize("name", NAMES)
def test_cached_steps_equal_the_full_forward_pass(name):
    model = build(name)
    ids = torch.randint(V, (3, 14), generator=torch.Generator().manual_seed(2))
    full = model.logits(ids)
    cache, pieces = None, []
    for chunk in (ids[:, :5], ids[:, 5:6], ids[:, 6:7], ids[:, 7:14]):  # prefill, 1, 1, many
        logits, cache = model.step(chunk, cache)
        pieces.append(logits)
    # other shapes, float32: a few ulps of the O(1) logits (measured <= 7e-7, the RNN's 2 ulps)
    assert (torch.cat(pieces, dim=1) - full).abs().max() < 1e-5


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("settings", [{"temperature": 0.0}, {"temperature": 0.9, "top_k": 5}])
def test_generation_is_the_same_with_and_without_the_cache(name, settings):
    model = build(name)
    prompt = torch.randint(V, (2, 3), generator=torch.Generator().manual_seed(3))
    runs = []
    for use_cache in (True, False):
        tokens = model.generate(
            prompt,
            generator=torch.Generator().manual_seed(4),
            use_cache=use_cache,
            max_new_tokens=40,  # past block_size 16: the window jumps several times
            **settings,
        )
        runs.append(torch.stack(list(tokens), dim=1))
    assert runs[0].shape == (2, 40)
    assert torch.equal(runs[0], runs[1])


def test_gpt_refuses_a_context_longer_than_block_size():
    model = build("gpt")
    with pytest.raises(ValueError, match="longer than block_size 16"):
        model.step(torch.zeros(1, 17, dtype=torch.long))


def test_rotary_scores_depend_on_relative_positions_only():
    from genlab.text.gpt import rotate

    q = torch.randn(1, 1, 1, 8, dtype=torch.float64)
    k = torch.randn(1, 1, 1, 8, dtype=torch.float64)
    scores = [float((rotate(q, s + 3, 10000.0) * rotate(k, s, 10000.0)).sum()) for s in (0, 7, 40)]
    assert scores[0] == pytest.approx(scores[1], abs=1e-5)  # angles in float32
    assert scores[0] == pytest.approx(scores[2], abs=1e-5)  # angles in float32


def test_weights_are_tied_and_gpt2_init_scales_residual_projections():
    model = GPT(GPTConfig(vocab_size=V, n_layer=8, n_embd=64, n_head=4))
    assert model.lm_head.weight is model.wte.weight
    std = float(model.h[0].attn.c_proj.weight.detach().std())
    # 0.02 / sqrt(2 * 8); the std of 4096 draws is within 1.1% (one sd), so 10% is ~9 sd
    assert std == pytest.approx(0.02 / 4, rel=0.1)
    rnn = build("lstm")
    assert rnn.head.weight is rnn.embedding.weight


def test_bad_configs_are_clear_errors():
    with pytest.raises(ValueError, match=r"n_embd .* must divide by n_head"):
        GPT(GPTConfig(n_embd=10, n_head=4))
    with pytest.raises(ValueError, match="positions must be one of"):
        GPT(GPTConfig(positions="alibi"))
    with pytest.raises(ValueError, match="tie_weights needs n_embd == hidden"):
        model_class("lstm")(replace(default_config("lstm"), hidden=32, n_embd=16))


# --- Hugging Face GPT-2 ---------------------------------------------------------------------
def test_export_loads_in_transformers_with_identical_logits(tmp_path):
    transformers = pytest.importorskip("transformers")
    model = build("gpt")
    with torch.no_grad():  # non-trivial biases and norms, not just the init
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.export(tmp_path / "hf", "hf")
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    ids = torch.randint(V, (2, 16), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        theirs = hf(ids).logits
    assert (theirs - model.logits(ids)).abs().max() < 1e-5  # float32, O(1) logits: a few ulps


def test_a_local_gpt2_folder_imports_with_identical_logits(tmp_path):
    transformers = pytest.importorskip("transformers")
    from genlab.text.hf import import_gpt

    config = transformers.GPT2Config(
        vocab_size=50, n_positions=32, n_embd=24, n_layer=2, n_head=3, resid_pdrop=0.0
    )
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(config).eval()
    hf.save_pretrained(tmp_path / "tiny-gpt2")  # safetensors by default
    model = import_gpt(tmp_path / "tiny-gpt2")
    assert model.config.block_size == 32 and model.config.vocab_size == 50
    ids = torch.randint(50, (2, 20), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():  # two float32 implementations: a few ulps of O(1) logits (~1e-7)
        assert (hf(ids).logits - model.logits(ids)).abs().max() < 1e-5


def test_import_errors_are_clear(tmp_path):
    from genlab.text.hf import import_gpt

    with pytest.raises(GenlabError, match="not a Hugging Face model folder"):
        import_gpt(tmp_path)
    with pytest.raises(GenlabError, match="GPT-2's layout"):
        build("gpt-rotary").export(tmp_path / "x", "hf")
    build("gpt").export(tmp_path / "ok", "hf")
    (tmp_path / "ok" / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(GenlabError, match="cannot read"):
        import_gpt(tmp_path / "ok")
