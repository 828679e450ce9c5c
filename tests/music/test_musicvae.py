"""MusicVAE: the conductor's shapes, bar independence, free bits, the schedules, the step-by-step
decoder against the parallel one, sampling by latents, slerp, and learning."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.errors import GenlabError
from genlab.music.musicvae import MusicVAE, MusicVAEConfig, attribute_vector, free_bits_kl, slerp
from genlab.notes import START

SMALL = dict(
    z_size=8,
    embedding_size=8,
    encoder_size=16,
    decoder_size=16,
    conductor_size=12,
    decoder_layers=2,
    conductor_layers=2,
)


def model(decoder: str = "flat", bars: int = 2, bar_length: int = 16, **kw) -> MusicVAE:
    torch.manual_seed(0)
    config = MusicVAEConfig(
        data_shape=(bars * bar_length,),
        bars=bars,
        bar_length=bar_length,
        decoder=decoder,
        **{**SMALL, **kw},
    )
    return MusicVAE(config)


def windows(n: int, length: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y): random events y and x = START + y[:-1], as the music datasets give them."""
    y = torch.randint(0, START, (n, length), generator=torch.Generator().manual_seed(seed))
    return torch.cat([torch.full((n, 1), START), y[:, :-1]], dim=1), y


def test_conductor_gives_one_embedding_per_bar():
    m = model("hierarchical", bars=4)
    z = torch.randn(3, 8)
    assert m.contexts(z).shape == (3, 4, 12)
    assert m.segments == (4, 16)
    x, _ = windows(3, 64)
    assert m.teacher_forced(x, m.contexts(z)).shape == (3, 64, 91)
    flat = model("flat", bars=4)
    assert flat.contexts(z).shape == (3, 1, 8) and flat.segments == (1, 64)


def test_hierarchical_bars_depend_only_on_their_own_events():
    """A hierarchical decoder restarts at every bar: changing bar 0's events (all but its last,
    which is bar 1's first input) leaves bars 1.. alone; the flat decoder carries them on."""
    x, _ = windows(2, 48)
    changed = x.clone()
    changed[:, 1:16] = (x[:, 1:16] + 5) % START
    for decoder, same in (("hierarchical", True), ("flat", False)):
        m = model(decoder, bars=3).eval()
        z = torch.randn(2, 8)
        a = m.teacher_forced(x, m.contexts(z))
        b = m.teacher_forced(changed, m.contexts(z))
        assert not torch.allclose(a[:, :16], b[:, :16])
        assert torch.allclose(a[:, 16:], b[:, 16:]) is same


@pytest.mark.parametrize("decoder", ["flat", "hierarchical"])
def test_step_by_step_decoder_equals_teacher_forcing(decoder):
    """The scheduled-sampling path fed only true inputs gives the one-call LSTM's logits."""
    m = model(decoder, bars=2).eval()
    x, _ = windows(3, 32)
    contexts = m.contexts(torch.randn(3, 8))
    parallel = m.teacher_forced(x, contexts)

    def truth(logits, t):
        return torch.full((logits.shape[0],), -1, dtype=torch.long)

    _, stepped = m.decode_steps(contexts, truth, first=x[:, 0], inputs=x)
    finite = torch.isfinite(parallel)
    assert torch.equal(finite, torch.isfinite(stepped))
    assert torch.allclose(parallel[finite], stepped[finite], atol=1e-5)


def test_start_is_never_an_output():
    m = model().eval()
    x, _ = windows(2, 32)
    logits = m.teacher_forced(x, m.contexts(torch.randn(2, 8)))
    assert torch.isneginf(logits[..., START]).all()
    assert (m.sample(4, generator=torch.Generator().manual_seed(0)) != START).all()


def test_free_bits_arithmetic():
    """beta * max(KL - free_bits ln 2, 0): nothing below the free nats, and no gradient."""
    free = 10.0 * math.log(2)
    kl = torch.tensor([2.0, free - 0.5, free + 3.0], requires_grad=True)
    term = free_bits_kl(kl, free_bits=10.0, beta=0.5)
    assert torch.allclose(term, torch.tensor([0.0, 0.0, 1.5]))
    term.sum().backward()
    assert torch.allclose(kl.grad, torch.tensor([0.0, 0.0, 0.5]))
    assert torch.allclose(free_bits_kl(kl, free_bits=0.0, beta=1.0), kl)


def test_kl_closed_form_against_monte_carlo():
    mu, sigma = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.7, 1.3]])
    z = mu + sigma * torch.randn(200_000, 2, generator=torch.Generator().manual_seed(0))
    q = torch.distributions.Normal(mu, sigma).log_prob(z).sum(1)
    p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    assert abs(float((q - p).mean()) - float(MusicVAE.kl(mu, sigma)[0])) < 0.01


def test_schedules():
    m = model(sampling_schedule="inverse_sigmoid", sampling_rate=100.0, max_beta=0.2)
    m.train()
    assert m.sampling_probability() == pytest.approx(1 - 100 / 101)
    assert m.beta() == 0.0  # beta_rate^0 = 1
    m.num_steps.fill_(1000)  # exp(10) >> 100
    assert m.sampling_probability() == pytest.approx(1 - 100 / (100 + math.exp(10)))
    assert m.beta() == pytest.approx(0.2 * (1 - 0.999**1000))
    m.eval()
    assert m.sampling_probability() == 0.0
    constant = model(sampling_schedule="constant", sampling_rate=0.3).train()
    assert constant.sampling_probability() == 0.3
    assert model(sampling_schedule="none").train().sampling_probability() == 0.0


def test_training_steps_count_and_eval_does_not():
    m = model()
    batch = windows(4, 32)
    m.train()
    m.loss(batch)
    m.eval()
    m.loss(batch)
    assert int(m.num_steps) == 1


def test_sampling_is_decoding_seeded_latents_row_by_row():
    m = model("hierarchical", bars=2).eval()
    g = torch.Generator().manual_seed(3)
    latent = m.sample_latent(4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(m.sample(4, generator=g), m.decode_latent(latent))
    halves = torch.cat([m.decode_latent(latent[:2]), m.decode_latent(latent[2:])])
    assert torch.equal(halves, m.decode_latent(latent))
    greedy = m.decode_latent(latent, temperature=0.0)
    assert torch.equal(greedy, m.decode(latent[:, :8]))


def test_slerp_endpoints_and_norms():
    a, b = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 1.0])
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], a) and torch.allclose(path[-1], b, atol=1e-6)
    assert torch.allclose(path.norm(dim=1), torch.linspace(3, 1, 5))
    assert torch.allclose(slerp(a, 2 * a, torch.tensor([0.5]))[0], 1.5 * a)  # parallel: lerp


def test_attribute_vector_is_top_quarter_minus_bottom_quarter():
    """Sec. 5.3 on a continuous attribute: mean mu of the windows with the highest quarter of
    values minus that of the lowest quarter; undefined (nan) values are left out."""
    m = model().eval()
    _, y = windows(10, 32, seed=4)
    values = torch.tensor([5.0, float("nan"), 1.0, 7.0, 2.0, 9.0, 0.0, 3.0, 4.0, 8.0])
    mu = m.embed_windows(y)
    # 9 defined values, a quarter is 2: the lowest are 0 and 1 (rows 6, 2), the highest 8, 9
    expected = mu[[9, 5]].mean(0) - mu[[6, 2]].mean(0)
    assert torch.allclose(attribute_vector(m, y, values), expected, atol=1e-6)
    with pytest.raises(GenlabError, match="more and with less"):
        attribute_vector(m, y, torch.full((10,), 2.0))


def test_the_elbo_is_below_zero_and_seeded():
    m = model().eval()
    x, y = windows(3, 32)
    elbo = m.elbo(y, generator=torch.Generator().manual_seed(0))
    assert elbo.shape == (3,) and (elbo < 0).all()
    assert torch.allclose(elbo, m.elbo((x, y), generator=torch.Generator().manual_seed(0)))


def test_windows_must_match_the_configured_bars():
    with pytest.raises(ValueError, match=r"data\.bars=16"):
        MusicVAE(MusicVAEConfig(data_shape=(32,), bars=16, **SMALL))
    with pytest.raises(ValueError, match="bars of music"):
        MusicVAEConfig(bar_length=0).validate()


@pytest.mark.parametrize("decoder", ["flat", "hierarchical"])
def test_it_learns_to_reconstruct(decoder):
    """A few windows, a few hundred steps: reconstruction from z = mu gets pitches right (0.75
    is what always predicting "hold" scores on these windows)."""
    torch.manual_seed(0)
    sizes = dict(encoder_size=64, decoder_size=64, z_size=16)
    m = model(decoder, bars=2, sampling_schedule="none", max_beta=0.0, **sizes)
    # melodic windows: a note every quarter, the rest holds
    y = torch.zeros(4, 32, dtype=torch.long)
    for i in range(4):
        y[i, ::4] = 2 + 39 + torch.randint(0, 12, (8,), generator=torch.Generator().manual_seed(i))
    x = torch.cat([torch.full((4, 1), START), y[:, :-1]], dim=1)
    before = m.eval().reconstruction_accuracy((x, y))["sampled"].mean()
    optimizer = torch.optim.Adam(m.parameters(), lr=1e-2)
    m.train()
    for _ in range(400):
        optimizer.zero_grad()
        m.loss((x, y))["loss"].backward()
        optimizer.step()
    after = m.eval().reconstruction_accuracy((x, y))
    assert after["teacher_forced"].mean() > 0.85
    assert after["sampled"].mean() > max(0.75, before)


def test_the_16_bar_variants_read_16_bar_windows_unless_told_otherwise():
    from genlab.settings import resolve

    assert resolve("musicvae-16bar").data_options == {"bars": 16}
    assert resolve("musicvae").data_options == {"bars": 2}
    assert resolve("musicvae", overrides={"data.bars": "4", "bars": "4"}).data_options == {
        "bars": 4
    }
    assert resolve("gpt").data_options == {}


def test_standard_metrics_compare_sample_and_data_statistics():
    from genlab.data import load_dataset
    from genlab.metrics.standard import standard_metrics

    torch.manual_seed(0)
    data = load_dataset("bach-melodies", "test", pieces=20)
    m = model("flat", bars=2, encoder_size=16, decoder_size=16, z_size=4).eval()
    found = standard_metrics(m, data, "test", batch_size=16, statistics_n=8)
    assert 0 <= found["reconstruction_sampled"] <= 1
    real = data.spec.extra["tokenizer"].statistics(data.batch(torch.arange(min(8, len(data))))[1])
    assert found["statistics_test_note_density"] == real["note_density"]
    samples = m.sample(8, generator=torch.Generator().manual_seed(0))
    assert found["statistics_samples_note_density"] == pytest.approx(
        data.spec.extra["tokenizer"].statistics(samples)["note_density"]
    )
    assert "statistics_samples_notes_in_key" in found
    without = standard_metrics(m, data, "test", batch_size=16, statistics_n=0)
    assert not any(k.startswith("statistics_") for k in without)
