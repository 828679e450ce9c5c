"""The adversarial loop and the GAN variants' own behaviour (tiny configs, few steps)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from genlab.contract import config_for_data
from genlab.data import load_dataset
from genlab.errors import TrainingDiverged
from genlab.gan import losses
from genlab.gan.cgan import CGAN
from genlab.gan.dcgan import DCGAN, upsamplings
from genlab.gan.train import TrainConfig, train, tricks_at
from genlab.gan.wgan import WGAN
from genlab.gan.wgan_gp import WGANGP
from genlab.training.checkpoint import EMA_WEIGHTS, WEIGHTS, RunDir, load_weights

TINY_IMAGE = {"z_dim": 4, "g_width": 4, "d_width": 4}


def tiny(cls, data_name="digits", **changes):
    data = load_dataset(data_name, "train")
    config = dataclasses.replace(config_for_data(cls.Config(), data.spec), **changes)
    torch.manual_seed(0)
    return cls(config), data


def quick(**changes) -> TrainConfig:
    values = dict(steps=6, batch_size=16, log_every=2, sample_every=100, checkpoint_every=3)
    return TrainConfig(**{**values, **changes})


def test_generator_sizes_follow_the_dcgan_rule():
    assert [upsamplings(s) for s in (8, 28, 32, 64)] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="not s0"):
        upsamplings(25)


def test_weight_clipping_holds_after_every_critic_step(tmp_path):
    model, data = tiny(WGAN, **TINY_IMAGE, clip=0.01)
    maxima = []
    original = model.after_discriminator_step

    def recorded():
        original()
        maxima.append(max(p.abs().max().item() for p in model.discriminator.parameters()))

    model.after_discriminator_step = recorded
    cfg = quick(optimizer="rmsprop", n_critic=3, lr_d=0.5)  # a huge lr: every step needs a clip
    RunDir(tmp_path / "run").path.mkdir()
    train(model, data, None, cfg, RunDir(tmp_path / "run"), progress=False)
    assert len(maxima) == cfg.steps * cfg.n_critic
    assert all(m <= 0.01 + 1e-9 for m in maxima)
    assert any(m == pytest.approx(0.01) for m in maxima)  # clipping was active


def test_conditional_samples_have_the_requested_labels_and_shapes():
    model, data = tiny(CGAN, **TINY_IMAGE, embed_dim=3)
    model.eval()
    g = torch.Generator().manual_seed(0)
    assert model.sample(5, generator=g, labels=3).shape == (5, *data.spec.shape)
    assert model.labels_for(4, [1, 2, 3, 4]).tolist() == [1, 2, 3, 4]
    assert model.labels_for(12).tolist() == [*range(10), 0, 1]
    # the label changes the image for the same z
    z = model.sample_latent(4, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(model.generate(z, 3), model.generate(z, 7))
    with pytest.raises(ValueError, match="labels must be one class"):
        model.sample(2, labels=10)
    with pytest.raises(ValueError, match="3 labels for 2"):
        model.sample(2, labels=[1, 2, 3])


@pytest.mark.parametrize("conditioning", ["projection", "concat"])
def test_the_discriminator_looks_at_the_label(conditioning):
    model, data = tiny(CGAN, **TINY_IMAGE, embed_dim=3, conditioning=conditioning)
    x = data.batch(torch.arange(4))[0] * 2 - 1
    nn.init.normal_(next(iter(model.discriminator.parameters())))  # break symmetric init
    if conditioning == "projection":
        nn.init.normal_(model.discriminator.embed.weight)
    a = model.discriminator(x, torch.tensor([0, 0, 0, 0]))
    b = model.discriminator(x, torch.tensor([5, 5, 5, 5]))
    assert not torch.allclose(a, b)


def _energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """2 E|X - Y| - E|X - X'| - E|Y - Y'|: zero iff the distributions agree."""
    return float(2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean() - torch.cdist(b, b).mean())


@pytest.mark.parametrize("cls", [DCGAN, WGANGP])
def test_a_few_adversarial_steps_move_the_generator_toward_the_data(cls, tmp_path):
    model, data = tiny(cls, "toy2d:8gaussians", z_dim=2, hidden=64, mlp_layers=2)
    real = data.batch(torch.arange(1000))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        before = _energy_distance(model.sample(1000, generator=g), real)
    cfg = quick(steps=300, batch_size=128, lr_g=1e-3, lr_d=1e-3, ema_decay=0, checkpoint_every=300)
    if cls is WGANGP:
        cfg = dataclasses.replace(cfg, betas=(0.0, 0.9), n_critic=2)
    train(model, data, None, cfg, RunDir(tmp_path / "run"), progress=False)
    model.eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        after = _energy_distance(model.sample(1000, generator=g), real)
    # measured on this seed: 2.06 -> 1.10 (DCGAN), 2.06 -> 1.20 (WGAN-GP)
    assert after < 0.7 * before, (before, after)


class _KilledAfter(RunDir):
    """A run directory whose process "dies" right after writing checkpoint `step`."""

    def __init__(self, path, step):
        super().__init__(path)
        self.kill_step = step

    def save_checkpoint(self, step, *args, **kwargs):
        out = super().save_checkpoint(step, *args, **kwargs)
        if step == self.kill_step:
            raise KeyboardInterrupt
        return out


def test_resume_is_exact_for_the_adversarial_loop(tmp_path):
    def run(run_dir, resume=False):
        model, data = tiny(DCGAN, **TINY_IMAGE)
        cfg = quick(steps=6, augment="translation", instance_noise=0.1, n_critic=2)
        train(model, data, None, cfg, run_dir, resume=resume, progress=False)

    run(RunDir(tmp_path / "straight"))
    with pytest.raises(KeyboardInterrupt):
        run(_KilledAfter(tmp_path / "split", 3))
    run(RunDir(tmp_path / "split"), resume=True)
    for name in (WEIGHTS, EMA_WEIGHTS):
        a = load_weights(tmp_path / "straight" / name)
        b = load_weights(tmp_path / "split" / name)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}:{k}"


def test_the_ema_file_is_the_full_model_with_the_averaged_generator(tmp_path):
    model, data = tiny(DCGAN, **TINY_IMAGE)
    train(model, data, None, quick(ema_decay=0.9), RunDir(tmp_path / "run"), progress=False)
    weights = load_weights(tmp_path / "run" / WEIGHTS)
    ema = load_weights(tmp_path / "run" / EMA_WEIGHTS)
    assert weights.keys() == ema.keys()
    assert all(torch.equal(weights[k], ema[k]) for k in weights if k.startswith("discriminator."))
    g_keys = [k for k in weights if k.startswith("generator.") and weights[k].is_floating_point()]
    assert any(not torch.equal(weights[k], ema[k]) for k in g_keys)


def test_logged_columns_name_both_players(tmp_path):
    import csv

    model, data = tiny(WGANGP, **TINY_IMAGE)
    train(model, data, None, quick(n_critic=2), RunDir(tmp_path / "run"), progress=False)
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    for column in ("d_loss", "g_loss", "d_real", "d_fake", "gp", "d_grad_norm", "g_grad_norm"):
        assert math.isfinite(float(rows[-1][column])), column
    assert (tmp_path / "run" / "samples" / "step-00000006.png").is_file()


class _Rigged(nn.Module):
    """A toy GAN whose discriminator loss is whatever the test sets."""

    Config = dict

    def __init__(self, d_loss: float):
        super().__init__()
        self.generator, self.discriminator = nn.Linear(2, 2), nn.Linear(2, 1)
        self.d_loss = d_loss

    def discriminator_won(self, d_loss):
        return losses.collapsed("non-saturating", d_loss)

    def sample(self, n, *, generator=None):
        return self.generator(torch.randn(n, 2, generator=generator))

    def discriminator_loss(self, batch, tricks, step):
        out = self.discriminator(batch).mean() * 0 + self.d_loss
        return {"loss": out, "d_real": out.detach(), "d_fake": out.detach()}

    def generator_loss(self, batch, tricks, step):
        return {"loss": self.discriminator(self.generator(batch)).mean()}


def test_a_collapsed_discriminator_stops_the_run_and_keeps_the_last_checkpoint(tmp_path):
    data = load_dataset("toy2d:8gaussians", "train")
    run = RunDir(tmp_path / "run")
    cfg = quick(steps=50, collapse_steps=10, ema_decay=0)
    with pytest.raises(TrainingDiverged, match=r"discriminator loss ~0.*step 9"):
        train(_Rigged(1e-6), data, None, cfg, run, progress=False)
    assert [p.name for p in run.step_checkpoints()] == [
        "step-00000003",
        "step-00000006",
        "step-00000009",
    ]


def test_a_non_finite_loss_stops_the_run(tmp_path):
    data = load_dataset("toy2d:8gaussians", "train")
    with pytest.raises(TrainingDiverged, match="non-finite discriminator loss"):
        train(
            _Rigged(math.nan),
            data,
            None,
            quick(ema_decay=0),
            RunDir(tmp_path / "r"),
            progress=False,
        )


def test_instance_noise_is_annealed_to_zero():
    cfg = quick(steps=100, instance_noise=0.2, label_smoothing=0.1, augment="color")
    assert tricks_at(0, cfg).noise_std == pytest.approx(0.2)
    assert tricks_at(50, cfg).noise_std == pytest.approx(0.1)
    assert tricks_at(100, cfg).noise_std == 0
    assert tricks_at(10, cfg).label_smoothing == 0.1 and tricks_at(10, cfg).augment == "color"


def test_bad_train_settings_are_refused():
    for bad in ({"n_critic": 0}, {"lr_d": 0.0}, {"augment": "flip"}, {"label_smoothing": 0.7}):
        with pytest.raises(ValueError):
            TrainConfig(**bad).validate()


def test_the_loop_evaluates_on_validation_data_without_changing_training(tmp_path):
    """With validation data the loop logs model.loss on it as val_* at every eval step and
    reports each evaluation to on_eval (a tuner prunes any loop through it); evaluation runs
    under a forked RNG, so the weights come out as without it."""
    import csv

    from genlab.gan.train import load_data

    data, val = load_data("digits", {}, quick(val_split="val"))
    assert val is not None and len(val) > 0
    assert load_data("digits", {}, quick())[1] is None  # GANs default to no validation split
    reports = []
    model, _ = tiny(DCGAN, **TINY_IMAGE)
    cfg = quick(eval_every=3, eval_batches=2)
    summary = train(
        model, data, val, cfg, RunDir(tmp_path / "val"), progress=False,
        on_eval=lambda step, metrics: reports.append((step, metrics)),
    )  # fmt: skip
    assert [step for step, _ in reports] == [3, 6]
    assert all(math.isfinite(m["val_loss"]) and "val_d_real" in m for _, m in reports)
    assert summary["val_loss"] == reports[-1][1]["val_loss"]
    with open(tmp_path / "val" / "metrics.csv") as f:
        logged = [row for row in csv.DictReader(f) if row.get("val_loss")]
    assert [int(row["step"]) for row in logged] == [3, 6]
    plain, _ = tiny(DCGAN, **TINY_IMAGE)
    train(plain, data, None, cfg, RunDir(tmp_path / "plain"), progress=False)
    for (k, a), b in zip(model.state_dict().items(), plain.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("cls", [DCGAN, WGAN, WGANGP])
def test_every_dcgan_network_model_is_a_latent_sampler_of_its_data_kind(cls):
    from genlab.contract import LatentSampler, sample_kind

    for data_name, kind in (("digits", "image"), ("toy2d:8gaussians", "vector")):
        extra = {} if kind == "image" else {"hidden": 8, "mlp_layers": 1}
        model, _ = tiny(cls, data_name, **TINY_IMAGE, **extra)
        model.eval()
        assert isinstance(model, LatentSampler) and sample_kind(model) == kind
        z = model.sample_latent(3, generator=torch.Generator().manual_seed(1))
        a = model.sample(3, generator=torch.Generator().manual_seed(1))
        assert torch.equal(model.decode_latent(z), a)


def test_only_wgan_clips_its_critic_and_critics_never_count_as_won():
    from genlab.contract import CriticHook

    assert isinstance(tiny(WGAN, **TINY_IMAGE)[0], CriticHook)
    assert not isinstance(tiny(WGANGP, **TINY_IMAGE)[0], CriticHook)
    assert not isinstance(tiny(DCGAN, **TINY_IMAGE)[0], CriticHook)
    for cls in (WGAN, WGANGP):
        assert not tiny(cls, **TINY_IMAGE)[0].discriminator_won(0.0)
    assert tiny(DCGAN, **TINY_IMAGE)[0].discriminator_won(1e-5)
    assert not tiny(DCGAN, **TINY_IMAGE, loss="wasserstein")[0].discriminator_won(1e-5)
