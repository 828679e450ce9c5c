"""Adversarial losses, penalties and the discriminator-input tricks every GAN here shares.

Logits, not probabilities: D(x) = sigmoid(logit) for the minimax family, and the raw critic
value for the Wasserstein and hinge losses. With r = logit(real) and f = logit(fake):

    minimax (Goodfellow et al. 2014)     L_D = -log D(x) - log(1 - D(G(z)))
                                          L_G =  log(1 - D(G(z)))        = -softplus(f)
    non-saturating (same paper, the fix)  L_D as minimax,  L_G = -log D(G(z)) = softplus(-f)
    hinge (Lim & Ye 2017; SAGAN, BigGAN)  L_D = relu(1 - r) + relu(1 + f),  L_G = -f
    wasserstein (Arjovsky et al. 2017)    L_D = f - r,  L_G = -f   (needs a Lipschitz critic:
                                          weight clipping, a gradient penalty or spectral norm)

-log D(x) = softplus(-r) and -log(1 - D(G(z))) = softplus(f), computed stably from logits.
One-sided label smoothing (Salimans et al. 2016) replaces the real target 1 by 1 - s.

Penalties:
    gradient penalty (WGAN-GP, Gulrajani et al. 2017)
        lambda * E[(||grad_x D(x_hat)||_2 - 1)^2],  x_hat = a x + (1 - a) G(z),  a ~ U[0, 1]
        (uniform, one a per example: a normal draw is the common bug)
    R1 (Mescheder et al. 2018)   gamma / 2 * E[||grad_x D(x)||^2] on real data only

`Tricks` holds what the adversarial loop decides for the discriminator's inputs at a step:
DiffAugment policy, instance noise std (annealed by the loop) and label smoothing. Models apply
`tricks(x)` to every image the discriminator sees, real or fake, in both players' losses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.gan.augment import diff_augment

LOSSES = ("minimax", "non-saturating", "hinge", "wasserstein")


def check_loss(kind: str) -> str:
    if kind not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {kind!r}")
    return kind


def discriminator_loss(kind: str, real: Tensor, fake: Tensor, smoothing: float = 0.0) -> Tensor:
    """L_D from the logits of a real batch and a fake batch (means over the batch)."""
    if kind in ("minimax", "non-saturating"):
        # BCE(r, 1 - s) = (1 - s) * softplus(-r) + s * softplus(r)
        real_term = (1 - smoothing) * F.softplus(-real) + smoothing * F.softplus(real)
        return real_term.mean() + F.softplus(fake).mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "wasserstein":
        return fake.mean() - real.mean()
    raise ValueError(f"unknown loss {kind!r}")


def generator_loss(kind: str, fake: Tensor) -> Tensor:
    """L_G from the logits of a fake batch."""
    if kind == "minimax":
        return -F.softplus(fake).mean()  # log(1 - sigmoid(f)); saturates when D wins
    if kind == "non-saturating":
        return F.softplus(-fake).mean()  # -log sigmoid(f)
    if kind in ("hinge", "wasserstein"):
        return -fake.mean()
    raise ValueError(f"unknown loss {kind!r}")


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """E[(||grad D(x_hat)|| - 1)^2] on x_hat = a x + (1 - a) x_fake, a ~ U[0, 1] per example."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).square().mean()


def r1_penalty(real_logits: Tensor, real: Tensor) -> Tensor:
    """E[||grad_x D(x)||^2] over real examples; `real` must require grad before D sees it."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()


@dataclass
class Tricks:
    """What the discriminator's inputs go through at one step (set by the adversarial loop)."""

    augment: str = ""  # DiffAugment policy, e.g. "translation,cutout,color"; "" = none
    noise_std: float = 0.0  # instance noise (Sonderby et al. 2016): x + N(0, std^2)
    label_smoothing: float = 0.0  # one-sided: the real target is 1 - s

    def __call__(self, x: Tensor) -> Tensor:
        if self.augment and x.dim() == 4:
            x = diff_augment(x, self.augment)
        if self.noise_std > 0:
            x = x + self.noise_std * torch.randn_like(x)
        return x


def evaluation_losses(kind: str, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
    """What `loss(batch)` of a GAN reports: "loss" is L_D (it reaches G through the fakes)."""
    d_loss = discriminator_loss(kind, real, fake)
    return {
        "loss": d_loss,
        "d_loss": d_loss.detach(),
        "g_loss": generator_loss(kind, fake).detach(),
        "d_real": real.detach().mean(),
        "d_fake": fake.detach().mean(),
    }


def collapsed(kind: str, d_loss: float, threshold: float = 1e-3) -> bool:
    """D has won outright (its loss ~0, so G's gradients carry no signal). Wasserstein critics
    have no floor, so they never count as collapsed by this test."""
    return kind != "wasserstein" and d_loss < threshold
