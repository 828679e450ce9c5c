"""One suite over the whole registry: every model keeps the contract with a tiny config.

A new model is added to TINY (its tiny configs) and DATA (a dataset it trains on); the first
test fails until it is.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genlab.config import from_dict, to_dict
from genlab.contract import (
    AdversarialModel,
    Agent,
    GenerativeModel,
    LatentSampler,
    LikelihoodModel,
    Preparable,
    RunAssets,
    SurrogateObjective,
    config_for_data,
)
from genlab.data import load_dataset
from genlab.data.base import batch_inputs
from genlab.registry import MODELS, default_config, model_class
from text_corpus import CORPUS

TINY: dict[str, list[dict]] = {
    "vae": [
        {
            "arch": "conv",
            "channels": 4,
            "blocks_high": 1,
            "blocks_low": 1,
            "latent_dim": 2,
            "iwae_k": 8,
        },
        {
            "arch": "mlp",
            "hidden": 16,
            "latent_dim": 3,
            "iwae_k": 8,
            "likelihood": "logistic",
            "prior": "normal",
        },
        {
            "arch": "conv",
            "channels": 4,
            "blocks_high": 0,
            "blocks_low": 1,
            "latent_dim": 2,
            "iwae_k": 8,
            "likelihood": "gaussian",
            "train_k": 2,
        },
    ],
    "dcgan": [
        {"z_dim": 4, "g_width": 4, "d_width": 4},
        {"z_dim": 2, "hidden": 8, "mlp_layers": 2, "__data__": "toy2d:8gaussians"},
        {"z_dim": 4, "g_width": 4, "d_width": 4, "spectral_norm": True, "loss": "hinge"},
        {"z_dim": 4, "g_width": 4, "d_width": 4, "r1_gamma": 1.0, "loss": "minimax"},
    ],
    "wgan": [{"z_dim": 4, "g_width": 4, "d_width": 4}],
    "wgan-gp": [
        {"z_dim": 4, "g_width": 4, "d_width": 4},
        {"z_dim": 2, "hidden": 8, "mlp_layers": 2, "__data__": "toy2d:8gaussians"},
    ],
    "cgan": [
        {"z_dim": 4, "embed_dim": 3, "g_width": 4, "d_width": 4},
        {"z_dim": 4, "embed_dim": 3, "g_width": 4, "d_width": 4, "conditioning": "concat"},
    ],
    "realnvp": [
        {"levels": 2, "hidden": 4, "blocks": 1},
        {"hidden": 8, "blocks": 1, "couplings": 4, "__data__": "toy2d:moons"},
        {
            "levels": 1,
            "hidden": 4,
            "blocks": 1,
            "dequantization": "variational",
            "dequant_hidden": 4,
        },
    ],
    "pixelcnn": [
        {"hidden": 4, "blocks": 1, "head": 4},
        {"hidden": 4, "blocks": 1, "head": 4, "binarize": True},
        {"hidden": 4, "blocks": 1, "head": 4, "output": "logistic_mixture", "mixtures": 2},
    ],
    "gated-pixelcnn": [
        {"hidden": 4, "layers": 1, "kernel": 3, "head": 4},
        {"hidden": 4, "layers": 1, "kernel": 3, "head": 4, "binarize": True, "conditional": True},
    ],
    "pixelrnn-row": [{"hidden": 4, "layers": 1, "head": 4, "binarize": True}],
    "pixelrnn-diag": [{"hidden": 4, "layers": 1, "head": 4}],
    "glow": [
        {"levels": 2, "depth": 2, "hidden": 4},
        {"depth": 3, "hidden": 8, "__data__": "toy2d:moons"},
        {
            "levels": 1,
            "depth": 1,
            "hidden": 4,
            "logit_alpha": 0.05,
            "dequantization": "variational",
            "dequant_hidden": 4,
        },
    ],
    "stylegan": [
        {"z_dim": 8, "w_dim": 8, "mapping_layers": 2, "channel_base": 32, "channel_max": 8}
    ],
    "gpt": [
        {"n_layer": 1, "n_head": 2, "n_embd": 8},
        {"n_layer": 2, "n_head": 2, "n_embd": 8, "positions": "rotary", "dropout": 0.1},
    ],
    "lstm": [{"n_layer": 2, "hidden": 8, "n_embd": 8, "dropout": 0.1}],
    "gru": [{"n_layer": 1, "hidden": 8, "n_embd": 8}],
    "rnn": [{"n_layer": 1, "hidden": 8, "n_embd": 4, "tie_weights": False}],
    "srcnn": [{"n1": 4, "n2": 4, "f1": 3, "f3": 3, "scale": 2}, {"n1": 4, "n2": 4, "mode": "rgb"}],
    "espcn": [{"n1": 4, "n2": 4, "scale": 2}, {"n1": 4, "n2": 4, "mode": "rgb", "scale": 4}],
    "srresnet": [
        {"channels": 4, "blocks": 1, "residual": False, "scale": 2},
        {"channels": 4, "blocks": 1, "mode": "y", "residual": False},
    ],  # residual=True starts at bicubic, which 40 steps of a 4-channel net need not beat
    "srgan": [
        {
            "channels": 4,
            "blocks": 1,
            "d_width": 2,
            "d_dense": 4,
            "content_layer": "relu1_2",
            "scale": 2,
        },
        {"channels": 4, "blocks": 0, "d_width": 2, "d_dense": 4, "content_layer": "pixel"},
    ],
    "fast-style": [
        {
            "width": 4,
            "blocks": 1,
            "style_size": 32,
            "content_layer": "relu1_1",
            "style_layers": ["relu1_1"],
            "__data__": "styles",  # 32-px patches: a fast case
        },
    ],
    "adain": [{"encoder_layer": "relu1_1", "style_size": 16, "__data__": "styles"}],
    "wavenet": [
        {
            "stacks": 1,
            "layers": 3,
            "residual_channels": 4,
            "dilation_channels": 4,
            "skip_channels": 8,
            "head_channels": 8,
            "__options__": {"segment": 512, "n": 64},  # short notes: a fast case
        },  # class-conditional: tones are labelled
        {
            "stacks": 1,
            "layers": 2,
            "residual_channels": 4,
            "dilation_channels": 4,
            "skip_channels": 8,
            "head_channels": 8,
            "output": "logistic_mixture",
            "mixtures": 2,
            "conditional": False,
            "__options__": {"segment": 512, "n": 64},
        },
    ],
    "musicvae": [
        {
            "z_size": 4,
            "embedding_size": 4,
            "encoder_size": 8,
            "decoder_size": 8,
            "decoder_layers": 1,
            "sampling_schedule": "constant",
            "sampling_rate": 0.5,  # the step-by-step (scheduled sampling) path
            "__options__": {"pieces": 8},
        },
        {
            "z_size": 4,
            "embedding_size": 4,
            "encoder_size": 8,
            "decoder_size": 8,
            "__data__": "chorales",  # four voices: 64 events per bar
            "__options__": {"pieces": 8, "bars": 1},
            "bars": 1,
        },
    ],
    "musicvae-16bar": [
        {
            "z_size": 4,
            "embedding_size": 4,
            "encoder_size": 8,
            "decoder_size": 8,
            "conductor_size": 6,
            "__options__": {"pieces": 8, "bars": 16, "transpose": 2},
        }
    ],
    "musicvae-16bar-flat": [
        {
            "z_size": 4,
            "embedding_size": 4,
            "encoder_size": 8,
            "decoder_size": 8,
            "__options__": {"pieces": 8, "bars": 16, "transpose": 2},
        }
    ],
    "dqn": [{"hidden": (8,)}, {"hidden": (8, 8), "huber": True, "tau": 0.5}],
    "double-dqn": [{"hidden": (8,)}],
    "reinforce": [{"hidden": (8,)}, {"hidden": (8,), "baseline": False, "entropy_coef": 0.1}],
    "ppo": [{"hidden": (8,)}, {"hidden": (8,), "clip_value": False}],
    "pg-lm": [
        {
            "base_config": {"n_layer": 1, "n_head": 2, "n_embd": 16},
            "prompt_length": 4,
            "length": 4,
            "k": 2,
            "kl_coef": 0.5,
            "reward": "line_length",
            "__options__": {"block_size": 8},
        }
    ],
}
# the dataset each model's tiny configs use (a config's "__data__" overrides it, and its
# "__options__" are the data's options)
DATA = {"vae": "digits", "dcgan": "digits", "wgan": "digits", "wgan-gp": "digits"}
DATA |= {"cgan": "digits", "stylegan": "digits", "realnvp": "digits", "glow": "digits"}
DATA |= dict.fromkeys(["pixelcnn", "gated-pixelcnn", "pixelrnn-row", "pixelrnn-diag"], "digits")
DATA |= dict.fromkeys(["gpt", "lstm", "gru", "rnn"], CORPUS)  # no download needed
DATA |= dict.fromkeys(["srcnn", "espcn", "srresnet", "srgan"], "photos")
DATA |= dict.fromkeys(["fast-style", "adain"], "photos")  # content photographs
DATA |= {"wavenet": "tones"}
DATA |= dict.fromkeys(["musicvae", "musicvae-16bar", "musicvae-16bar-flat"], "bach-melodies")
DATA |= dict.fromkeys(["dqn", "double-dqn", "reinforce", "ppo"], "gym:CartPole-v1")
DATA |= {"pg-lm": CORPUS}

CASES = [(name, i) for name in MODELS for i in range(len(TINY.get(name, [None])))]


def test_every_registered_model_has_tiny_configs_and_data():
    assert set(TINY) == set(MODELS) == set(DATA)


def build(name: str, i: int, seed: int = 0):
    cls = model_class(name)
    tiny = dict(TINY[name][i])
    options = tiny.pop("__options__", {})  # the data's options for this case
    data = load_dataset(tiny.pop("__data__", DATA[name]), "train", **options)
    config = config_for_data(default_config(name), data.spec)
    config = dataclasses.replace(
        config, **{k: tuple(v) if isinstance(v, list) else v for k, v in tiny.items()}
    )
    torch.manual_seed(seed)
    model = cls(config)
    if isinstance(model, RunAssets):  # as training binds it: the data's tokenizer
        model.bind_data(data.spec)
    return model, data


def first_batch(data, n=16):
    return data.batch(torch.arange(n))


@pytest.mark.parametrize("name, i", CASES)
def test_loss_is_finite_and_gradients_reach_every_parameter(name, i):
    model, data = build(name, i)
    assert isinstance(model, GenerativeModel)
    out = model.loss(first_batch(data))
    assert "loss" in out and out["loss"].dim() == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    for pname, p in model.named_parameters():
        if not p.requires_grad:  # a frozen part (AdaIN's VGG encoder) is not trained
            continue
        assert p.grad is not None, f"no gradient reaches {pname}"
        assert torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name, i", CASES)
def test_each_adversarial_player_gets_gradients_from_its_own_loss(name, i):
    from genlab.gan.losses import Tricks

    model, data = build(name, i)
    if not isinstance(model, AdversarialModel):
        pytest.skip(f"{name} is not adversarial")
    tricks = Tricks(augment="translation,cutout,color", noise_std=0.1, label_smoothing=0.1)
    for loss_fn, player in (
        (model.discriminator_loss, model.discriminator),
        (model.generator_loss, model.generator),
    ):
        model.zero_grad(set_to_none=True)
        out = loss_fn(first_batch(data), tricks, 0)
        assert torch.isfinite(out["loss"])
        out["loss"].backward()
        for pname, p in player.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    other = {id(p) for p in model.generator.parameters()}
    assert not other & {id(p) for p in model.discriminator.parameters()}
    assert len(other) + sum(1 for _ in model.discriminator.parameters()) == len(
        list(model.parameters())
    ), "every parameter belongs to exactly one player"


def same(a, b) -> bool:
    """Equal samples: tensors, or an agent's episodes (same seeds, actions, observations)."""
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return len(a) == len(b) and all(
        x.seed == y.seed and torch.equal(x.actions, y.actions)
        and torch.equal(x.observations, y.observations)
        for x, y in zip(a, b, strict=True)
    )  # fmt: skip


@pytest.mark.parametrize("name, i", CASES)
def test_samples_have_the_data_shape_and_are_seeded(name, i):
    model, data = build(name, i)
    model.eval()
    with torch.no_grad():
        a = model.sample(3, generator=torch.Generator().manual_seed(1))
        b = model.sample(3, generator=torch.Generator().manual_seed(1))
        c = model.sample(3, generator=torch.Generator().manual_seed(2))
    if isinstance(model, Agent):  # its samples are episodes: observations of the data's shape
        assert len(a) == 3 and all(e.observations.shape[1:] == data.spec.shape for e in a)
        assert same(a, b) and not same(a, c)
        return
    assert a.shape == (3, *data.spec.shape)
    assert torch.equal(a, b) and not torch.equal(a, c)
    if data.spec.kind == "image":
        assert a.min() >= 0 and a.max() <= 1


@pytest.mark.parametrize("name, i", CASES)
def test_a_latent_sampler_decodes_its_latents_row_by_row(name, i):
    """What the server's micro-batching relies on: one request's samples do not depend on the
    requests batched with it."""
    model, _ = build(name, i)
    if not isinstance(model, LatentSampler):
        pytest.skip(f"{name} has no explicit latent")
    model.eval()
    cond = {"labels": 1} if name == "cgan" else {}  # default labels cycle with the row index
    with torch.no_grad():
        a = model.sample(3, generator=torch.Generator().manual_seed(1), **cond)
        z1 = model.sample_latent(3, generator=torch.Generator().manual_seed(1))
        z2 = model.sample_latent(2, generator=torch.Generator().manual_seed(9))
        assert torch.equal(model.decode_latent(z1, **cond), a)
        both = model.decode_latent(torch.cat([z1, z2]), **cond)
    # a batch of 5 vs 3 and 2: float32 sums may run in another order, a few ulps of the O(1)
    # outputs (measured: at most 1.2e-7, Glow)
    assert (both[:3] - a).abs().max() < 1e-5
    assert (both[3:] - model.decode_latent(z2, **cond)).abs().max() < 1e-5


@pytest.mark.parametrize("name, i", CASES)
def test_log_prob_of_discrete_data_is_a_finite_log_probability(name, i):
    model, data = build(name, i)
    if not isinstance(model, LikelihoodModel):
        pytest.skip(f"{name} has no likelihood")
    model.eval()
    x = batch_inputs(first_batch(data, 8))
    if isinstance(model, Preparable):
        x = model.prepare(x, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        lp = model.log_prob(x, generator=torch.Generator().manual_seed(0))
        again = model.log_prob(x, generator=torch.Generator().manual_seed(0))
    assert lp.shape == (8,) and torch.isfinite(lp).all()
    assert (lp <= 1e-4).all(), "log-probability of discrete data above 0"
    assert torch.equal(lp, again), "log_prob is not determined by its generator"


@pytest.mark.parametrize("name, i", CASES)
def test_save_load_round_trip_gives_the_same_model(name, i, tmp_path):
    from genlab.training.checkpoint import load_weights, save_weights

    model, _data = build(name, i)
    model.eval()
    save_weights(tmp_path / "w.safetensors", model.state_dict())
    cls = model_class(name)
    rebuilt = cls(from_dict(cls.Config, to_dict(model.config)))
    rebuilt.load_state_dict(load_weights(tmp_path / "w.safetensors"), strict=True)
    rebuilt.eval()
    with torch.no_grad():
        a = model.sample(4, generator=torch.Generator().manual_seed(3))
        b = rebuilt.sample(4, generator=torch.Generator().manual_seed(3))
    assert same(a, b)


@pytest.mark.parametrize("name, i", CASES)
def test_seeded_construction_and_loss_are_deterministic(name, i):
    model_a, data = build(name, i, seed=5)
    model_b, _ = build(name, i, seed=5)
    for (ka, va), (_, vb) in zip(
        model_a.state_dict().items(), model_b.state_dict().items(), strict=True
    ):
        assert torch.equal(va, vb), ka
    batch = first_batch(data)
    torch.manual_seed(9)
    la = model_a.loss(batch)["loss"]
    torch.manual_seed(9)
    lb = model_b.loss(batch)["loss"]
    assert torch.equal(la, lb)


@pytest.mark.parametrize("name, i", CASES)
def test_a_few_steps_lower_the_loss(name, i):
    model, data = build(name, i)
    if isinstance(model, AdversarialModel):
        pytest.skip("a GAN's loss is a game, not an objective (tests/gan checks its training)")
    if isinstance(model, SurrogateObjective):
        pytest.skip("a policy-gradient surrogate, not an objective (tests/rl checks its return)")
    batch = first_batch(data, 32)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def measured():
        torch.manual_seed(0)
        with torch.no_grad():
            return float(model.loss(batch)["loss"])

    before = measured()
    for _ in range(40):
        optimizer.zero_grad()
        model.loss(batch)["loss"].backward()
        optimizer.step()
    assert measured() < before
