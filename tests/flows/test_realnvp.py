"""RealNVP as a whole: invertible, its log-det is the brute-force one, temperature 0 is the mode."""

from __future__ import annotations

import torch

from genlab.flows.realnvp import RealNVP, RealNVPConfig


def built(shape, **kw) -> RealNVP:
    torch.manual_seed(0)
    model = RealNVP(RealNVPConfig(data_shape=shape, **kw)).double()
    x = torch.rand(8, *shape, dtype=torch.float64)
    model.train()
    model.log_prob(x)  # ActNorm's data-dependent initialisation
    model.eval()
    with torch.no_grad():  # zero-initialised output layers would make every coupling trivial
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def test_the_whole_image_flow_inverts_and_its_logdet_matches_slogdet():
    model = built((1, 4, 4), levels=1, hidden=4, blocks=1)
    x = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    z, logdet = model.forward_flow(x)
    assert torch.allclose(model.inverse_flow(z), x, atol=1e-10)
    for i in range(2):
        jac = torch.autograd.functional.jacobian(
            lambda v: model.forward_flow(v.view(1, 1, 4, 4))[0].flatten(), x[i].flatten()
        )
        assert torch.allclose(logdet[i], torch.linalg.slogdet(jac)[1], atol=1e-8)


def test_float32_round_trip_on_mnist_sized_images():
    model = built((1, 28, 28)).float()
    x = torch.randn(3, 1, 28, 28)
    z, _ = model.forward_flow(x)
    assert (model.inverse_flow(z) - x).abs().max() < 1e-4


def test_vector_flow_logdet_and_exact_density_integrates_to_one():
    model = built((2,), hidden=8, couplings=4)
    x = torch.randn(3, 2, dtype=torch.float64)
    _, logdet = model.forward_flow(x)
    jac = torch.autograd.functional.jacobian(
        lambda v: model.forward_flow(v.view(1, 2))[0].flatten(), x[0]
    )
    assert torch.allclose(logdet[0], torch.linalg.slogdet(jac)[1], atol=1e-8)
    # p(x) on a fine grid sums to ~1 (the flow is a proper density)
    g = torch.linspace(-8, 8, 401, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).view(-1, 2)
    with torch.no_grad():
        mass = model.log_prob(grid).exp().sum() * (g[1] - g[0]) ** 2
    assert abs(float(mass) - 1) < 0.02


def test_temperature_zero_sampling_returns_the_image_of_z_zero():
    model = built((1, 8, 8), levels=2, hidden=4, blocks=1)
    with torch.no_grad():
        a = model.sample(3, generator=torch.Generator().manual_seed(0), temperature=0.0)
        b = model.sample(3, generator=torch.Generator().manual_seed(1), temperature=0.0)
    assert torch.equal(a, b) and torch.equal(a[0], a[1])


def test_sample_with_a_temperature_from_the_command_line(tmp_path, capsys):
    from genlab.cli import main

    run = tmp_path / "run"
    tiny = ["-o", "levels=2", "-o", "hidden=4", "-o", "blocks=1", "-o", "train.batch_size=8"]
    assert (
        main(
            ["train", "realnvp", "--data", "digits", "--steps", "2", "--out", str(run), "-q", *tiny]
        )
        == 0
    )
    assert (
        main(
            [
                "sample",
                str(run),
                "--n",
                "4",
                "--temperature",
                "0.7",
                "--out",
                str(tmp_path / "s.png"),
            ]
        )
        == 0
    )
    assert (tmp_path / "s.png").is_file()
    capsys.readouterr()
    assert main(["sample", str(run), "--temperature", "-1", "--out", str(tmp_path / "x.png")]) == 2
    assert "--temperature must be a number >= 0" in capsys.readouterr().err
    assert main(["sample", str(run), "--label", "1", "--out", str(tmp_path / "x.png")]) == 2
    assert "RealNVP does not take --label" in capsys.readouterr().err
