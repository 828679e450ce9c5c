"""Variational autoencoder with an importance-weighted likelihood bound.

Papers:
- Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014 (the VAE, the ELBO, the
  reparameterization trick, the closed-form Gaussian KL of Appendix B).
- Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016 (the IWAE bound
  used by `log_prob`, and optionally for training with `train_k > 1`).
- Higgins et al., "beta-VAE", ICLR 2017 (the `beta` weight on the KL term).
- Tomczak & Welling, "VAE with a VampPrior", AISTATS 2018 (the default prior: a mixture of the
  variational posteriors of K learned pseudo-inputs, p(z) = 1/K sum_k q(z | u_k)).
- Salimans et al., "PixelCNN++", ICLR 2017 (the discretized logistic likelihood; the discretized
  Gaussian is the same bin integration with the normal CDF).
- Kingma et al., "Improved Variational Inference with Inverse Autoregressive Flow", NeurIPS 2016
  (free bits, `free_bits`).

Equations, with q(z|x) = N(mu, diag(sigma^2)) from the encoder and the prior p(z) either
N(0, I) (`prior="normal"`) or the VampPrior 1/K sum_k q(z | u_k) (`prior="vamp"`, default):

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))                 <= log p(x)
    KL      = 1/2 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)  (closed form, p = N(0, I))
    KL     ~= log q(z|x) - log p(z), z ~ q(z|x)                     (one-sample estimate, VampPrior)
    z       = mu + sigma * eps,  eps ~ N(0, I)                     (reparameterization)
    L_k(x)  = E[log 1/k sum_i p(x, z_i) / q(z_i|x)],  z_i ~ q(z|x)  (IWAE; ELBO = L_1 <= L_k
                                                                    <= log p(x), rising with k)

Likelihoods p(x|z), all factorised over pixels:
- "bernoulli": data dynamically binarized (`prepare` draws x ~ Bernoulli(intensity)), the
  decoder gives one logit per pixel.
- "logistic" / "gaussian": x is one of 256 levels; the decoder gives a location and a log-scale
  per pixel, and the probability of a level is the mass of its bin [x - 1/510, x + 1/510] under
  a logistic or Gaussian, with the outer bins stretched to -inf and +inf (PixelCNN++).

Why the VampPrior is the default: on 4500 training digits the N(0, I) prior is the weak
point. The aggregate posterior the encoder learns is far from N(0, I), and the VampPrior, a
prior made of the encoder's own posteriors at learned pseudo-inputs, closes much of that gap;
with the same encoder/decoder and budget it lowered the test NLL on mnist-5k by about 2.5 nats
(docs/vae.md). The pseudo-inputs u_k = sigmoid(logits_k) are images; they are initialised from
the first training batch (data-dependent, like Glow's ActNorm) and then learned. `prior="normal"`
gives the textbook VAE with the closed-form KL.

Deviations from the plain VAE, all off or neutral unless set in the config:
- `loss` optimises `recon + beta * KL'`, where KL' is the KL with a linear warm-up of its weight
  over `kl_warmup_steps` and free bits (each latent's batch-mean KL floored at `free_bits`); the
  true ELBO is always logged as "elbo" so these tricks never hide what is measured.
- `train_k > 1` trains on the IWAE bound instead of the ELBO.
- `shift > 0` translates each training image by up to `shift` pixels (data augmentation against
  overfitting on small datasets); only in `loss`, never in `log_prob`.

Precision: under bf16 autocast the encoder and decoder run in bf16 and their outputs are cast
up (`upcast`), so every density, KL and importance weight is computed in fp32.

Read bottom-up: likelihoods, blocks, encoder and decoder, the config, the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.data.base import Batch, Dataset, batch_inputs, batch_labels
from genlab.distributions import LOG_SCALE_MIN, bernoulli_log_prob, discretized_log_prob

# --------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------


def upcast(x: Tensor) -> Tensor:
    """x in at least fp32. Under bf16 autocast the networks' outputs are bf16; the densities,
    KL terms and log-weights computed from them (sums and differences of hundreds of nats,
    where 8 mantissa bits lose whole nats) are computed in fp32. fp64 stays fp64."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


class ResBlock(nn.Module):
    """Pre-activation residual block: x + conv(act(conv(act(x)))), last conv zero-initialised
    so every block starts as the identity."""

    def __init__(self, channels: int, dropout: float):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C, H, W)
        h = self.conv1(F.silu(x))
        h = self.conv2(self.dropout(F.silu(h)))
        return x + h


def _res_stack(channels: int, n: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(channels, dropout) for _ in range(n)])


class ConvEncoder(nn.Module):
    """x (B, C, H, W) -> 2 stride-2 convs -> residual blocks at H/4 -> (mu, logvar) (B, D).

    The full-resolution stage is a single strided conv: on a CPU a 3x3 conv at 28x28 costs as
    much as the rest of the network, and the coarse stages are where the capacity pays off.
    """

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        c_in, height, width = cfg.data_shape
        c1, c2 = cfg.channels, 2 * cfg.channels
        self.net = nn.Sequential(
            nn.Conv2d(c_in, c1, 4, stride=2, padding=1),  # (B, c1, H/2, W/2)
            _res_stack(c1, cfg.blocks_high, cfg.dropout),
            nn.SiLU(),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1),  # (B, c2, H/4, W/4)
            _res_stack(c2, cfg.blocks_low, cfg.dropout),
            nn.SiLU(),
            nn.Flatten(),
        )
        self.head = nn.Linear(c2 * (height // 4) * (width // 4), 2 * cfg.latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.head(self.net(x)).chunk(2, dim=1)  # (B, D), (B, D)
        return mu, logvar


class ConvDecoder(nn.Module):
    """z (B, D) -> linear to (c2, H/4, W/4) -> residual blocks -> 2 transposed convs ->
    (B, out_channels, H, W)."""

    def __init__(self, cfg: VAEConfig, out_channels: int):
        super().__init__()
        _, height, width = cfg.data_shape
        c1, c2 = cfg.channels, 2 * cfg.channels
        self.low_shape = (c2, height // 4, width // 4)
        self.fc = nn.Linear(cfg.latent_dim, c2 * (height // 4) * (width // 4))
        self.net = nn.Sequential(
            _res_stack(c2, cfg.blocks_low, cfg.dropout),
            nn.SiLU(),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1),  # (B, c1, H/2, W/2)
            _res_stack(c1, cfg.blocks_high, cfg.dropout),
            nn.SiLU(),
            nn.ConvTranspose2d(c1, out_channels, 4, stride=2, padding=1),  # (B, out, H, W)
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.fc(z).view(-1, *self.low_shape))


class MLPEncoder(nn.Module):
    """x (B, C, H, W) -> flatten -> 2 hidden layers -> (mu, logvar) (B, D)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        n = math.prod(cfg.data_shape)
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(n, cfg.hidden),
            nn.SiLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.SiLU(),
            nn.Linear(cfg.hidden, 2 * cfg.latent_dim),
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=1)
        return mu, logvar


class MLPDecoder(nn.Module):
    """z (B, D) -> 2 hidden layers -> (B, out_channels, H, W)."""

    def __init__(self, cfg: VAEConfig, out_channels: int):
        super().__init__()
        _, height, width = cfg.data_shape
        self.out_shape = (out_channels, height, width)
        self.net = nn.Sequential(
            nn.Linear(cfg.latent_dim, cfg.hidden),
            nn.SiLU(),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.SiLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, math.prod(self.out_shape)),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, *self.out_shape)


# --------------------------------------------------------------------------------------------
# Config and model
# --------------------------------------------------------------------------------------------


@dataclass
class VAEConfig:
    data_shape: tuple[int, ...] = (1, 28, 28)  # (C, H, W); filled from the dataset
    num_classes: int = 0  # filled from the dataset; unused (the VAE is unconditional)
    arch: Literal["mlp", "conv"] = "conv"  # encoder/decoder family
    latent_dim: int = 32  # D, size of z
    likelihood: Literal["bernoulli", "logistic", "gaussian"] = "bernoulli"
    channels: int = 32  # conv: channels at H/2; H/4 has twice as many
    blocks_high: int = 0  # conv: residual blocks at H/2 (0: 1.4x faster, 0.45 nats worse)
    blocks_low: int = 2  # conv: residual blocks at H/4
    hidden: int = 512  # mlp: width of the two hidden layers
    dropout: float = 0.0  # dropout inside residual blocks / hidden layers
    beta: float = 1.0  # weight of the KL term (beta-VAE); 1 is the true ELBO
    kl_warmup_steps: int = 0  # linear ramp of the KL weight from 0 to beta over this many steps
    free_bits: float = 0.0  # nats per latent dim under which the KL is not penalised
    train_k: int = 3  # importance samples in the training loss (1 = ELBO, >1 = IWAE bound);
    # 3 costs 1.9x per step and gave -1.3 nats test NLL at 2000 steps on mnist-5k
    prior: Literal["normal", "vamp"] = "vamp"  # N(0, I) or the VampPrior mixture
    pseudo_inputs: int = 64  # K, the VampPrior's number of learned pseudo-inputs
    shift: int = 0  # random translation of training images by up to this many pixels
    iwae_k: int = 256  # importance samples used by log_prob
    iwae_batch: int = 8192  # images decoded at once by log_prob (memory vs speed)

    def validate(self) -> None:
        if len(self.data_shape) != 3 or min(self.data_shape) < 1:
            raise ValueError(f"data_shape must be (C, H, W) with sizes >= 1, got {self.data_shape}")
        if self.arch not in ("mlp", "conv"):
            raise ValueError(f"arch must be 'mlp' or 'conv', got {self.arch!r}")
        if self.likelihood not in ("bernoulli", "logistic", "gaussian"):
            raise ValueError(f"unknown likelihood {self.likelihood!r}")
        if self.arch == "conv" and (self.data_shape[1] % 4 or self.data_shape[2] % 4):
            raise ValueError(f"conv arch needs H and W divisible by 4, got {self.data_shape}")
        for name in ("latent_dim", "channels", "hidden", "train_k", "iwae_k", "iwae_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("blocks_high", "blocks_low", "kl_warmup_steps", "shift", "num_classes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.beta < 0 or self.free_bits < 0:
            raise ValueError("beta and free_bits must be >= 0")
        if self.prior not in ("normal", "vamp"):
            raise ValueError(f"prior must be 'normal' or 'vamp', got {self.prior!r}")
        if self.prior == "vamp" and self.pseudo_inputs < 1:
            raise ValueError(f"pseudo_inputs must be >= 1, got {self.pseudo_inputs}")
        if self.prior == "vamp" and self.free_bits > 0:
            raise ValueError("free_bits needs the closed-form KL of prior='normal'")


class VAE(nn.Module):
    Config: ClassVar[type] = VAEConfig
    bound_name: ClassVar[str] = "IWAE bound"
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)  # DataSpec kinds (contract.py)
    # The mnist-5k recipe (bench/vae_mnist5k.py): AdamW, 100 warm-up steps, cosine to 2% of lr.
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 2800,  # 585 s on 2 CPU cores, test NLL 87.99 (bench/vae_mnist5k.py)
        "batch_size": 64,
        "lr": 2e-3,
        "weight_decay": 1e-4,
        "warmup_steps": 100,
        "min_lr_ratio": 0.02,
        "grad_clip": 1.0,
        "ema_decay": 0.997,
        "eval_every": 500,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # --preset gpu (not yet measured): twice the channels, residual blocks at both
        # resolutions (blocks_high 0 was 0.45 nats worse, chosen for CPU speed), bigger batches
        "gpu": {
            "model_config": {"channels": 64, "blocks_high": 2, "blocks_low": 4},
            "train": {"steps": 20000, "batch_size": 128, "lr": 1e-3, "eval_every": 1000},
        }
    }

    def __init__(self, config: VAEConfig | None = None):
        super().__init__()
        config = config if config is not None else VAEConfig()
        config.validate()
        self.config = config
        c = config.data_shape[0]
        out_channels = c if config.likelihood == "bernoulli" else 2 * c  # logits | (loc, log_s)
        if config.arch == "conv":
            self.encoder: nn.Module = ConvEncoder(config)
            self.decoder: nn.Module = ConvDecoder(config, out_channels)
        else:
            self.encoder = MLPEncoder(config)
            self.decoder = MLPDecoder(config, out_channels)
        # Counts training calls of `loss`, for the KL warm-up; saved with the weights.
        self.register_buffer("num_steps", torch.zeros((), dtype=torch.long))
        if config.prior == "vamp":
            # VampPrior pseudo-inputs u_k = sigmoid(logits_k), (K, C, H, W); set from the first
            # training batch (see `_init_pseudo_inputs`), then learned with everything else.
            self.pseudo_logits = nn.Parameter(torch.zeros(config.pseudo_inputs, *config.data_shape))
            self.register_buffer("pseudo_initialized", torch.zeros((), dtype=torch.bool))
        # A Python copy of `pseudo_initialized` for `loss` to test: reading the buffer there
        # would be a host-device sync per step on a GPU and a graph break for torch.compile.
        # Loading a state dict (checkpoints, EMA copies) refreshes it.
        self.pseudo_ready = False

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if self.config.prior == "vamp":
            self.pseudo_ready = bool(self.pseudo_initialized)  # once per load, not per step

    # ---- data space -------------------------------------------------------------------------

    def prepare(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Bernoulli: a binary draw x ~ Bernoulli(intensity) (dynamic binarization); else x."""
        if self.config.likelihood == "bernoulli":
            return torch.bernoulli(x, generator=generator)
        return x

    def _shift(self, x: Tensor) -> Tensor:
        """Translate each image by an integer offset in [-shift, shift]^2, zero-filled."""
        s = self.config.shift
        b, _, height, width = x.shape
        padded = F.pad(x, (s, s, s, s))  # (B, C, H + 2s, W + 2s)
        dy, dx = torch.randint(0, 2 * s + 1, (2, b), device=x.device)
        rows = (dy[:, None] + torch.arange(height, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(width, device=x.device))[:, None, None, :]
        batch = torch.arange(b, device=x.device)[:, None, None, None]
        chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        return padded[batch, chan, rows, cols]

    # ---- the model --------------------------------------------------------------------------

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(z|x): (mu, log sigma^2), each (B, D), in at least fp32 (see `upcast`)."""
        mu, logvar = self.encoder(x)
        return upcast(mu), upcast(logvar).clamp(-12.0, 8.0)

    def decode(self, z: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """p(x|z) parameters: logits (B, C, H, W) for bernoulli, else (loc, log_scale)."""
        out = upcast(self.decoder(z))
        if self.config.likelihood == "bernoulli":
            return out
        loc, log_scale = out.chunk(2, dim=1)
        return loc + 0.5, log_scale.clamp(min=LOG_SCALE_MIN)  # centre locations on mid-grey

    def log_px_given_z(self, x: Tensor, params: Tensor | tuple[Tensor, Tensor]) -> Tensor:
        """log p(x|z) summed over pixels -> (B,)."""
        if self.config.likelihood == "bernoulli":
            assert isinstance(params, Tensor)
            return bernoulli_log_prob(x, params)
        loc, log_scale = params
        kind = self.config.likelihood
        return discretized_log_prob(x, loc, log_scale, kind=kind).flatten(1).sum(1)  # type: ignore[arg-type]

    def mean(self, params: Tensor | tuple[Tensor, Tensor]) -> Tensor:
        """The image a decoder output stands for, in [0, 1]: Bernoulli means or locations."""
        if self.config.likelihood == "bernoulli":
            assert isinstance(params, Tensor)
            return torch.sigmoid(params)
        return params[0].clamp(0.0, 1.0)

    # ---- the prior ----------------------------------------------------------------------------

    def prior_components(self) -> tuple[Tensor, Tensor] | None:
        """VampPrior components (mu_k, logvar_k), each (K, D): q(z | u_k); None for N(0, I)."""
        if self.config.prior != "vamp":
            return None
        if torch.is_grad_enabled() or self.training:
            return self.encode(torch.sigmoid(self.pseudo_logits))
        # Sampling and evaluation: the K encodings are reused while no parameter or buffer
        # changes (an in-place update bumps a tensor's version). A served request of one sample
        # would otherwise encode every pseudo-input again (most of its time).
        key = tuple((id(t), t._version) for t in (*self.parameters(), *self.buffers()))
        cached = self.__dict__.get("_prior_cache")
        if cached is None or cached[0] != key:
            cached = (key, self.encode(torch.sigmoid(self.pseudo_logits)))
            self.__dict__["_prior_cache"] = cached
        return cached[1]

    def log_prior(self, z: Tensor, components: tuple[Tensor, Tensor] | None) -> Tensor:
        """log p(z) summed over latent dims: z (..., D) -> (...)."""
        if components is None:
            return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
        mu_k, logvar_k = components  # (K, D)
        diff = z.unsqueeze(-2) - mu_k  # (..., K, D)
        log_n = -0.5 * (diff.pow(2) * torch.exp(-logvar_k) + logvar_k + math.log(2 * math.pi))
        return torch.logsumexp(log_n.sum(-1), -1) - math.log(mu_k.shape[0])  # (...)

    @torch.no_grad()
    def _init_pseudo_inputs(self, x: Tensor) -> None:
        """Data-dependent init: pseudo-inputs <- the first training batch's intensities.

        Under DDP every rank must start from the same pseudo-inputs, so rank 0's are broadcast.
        """
        k = self.config.pseudo_inputs
        repeats = -(-k // x.shape[0])
        images = x.repeat(repeats, *([1] * (x.dim() - 1)))[:k]
        self.pseudo_logits.copy_(torch.logit(images.clamp(0.05, 0.95)))
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.broadcast(self.pseudo_logits.data, src=0)
        self.pseudo_initialized.fill_(True)
        self.pseudo_ready = True

    @staticmethod
    def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
        """KL(N(mu, sigma^2) || N(0, 1)) per latent dim: 1/2 (mu^2 + sigma^2 - 1 - log sigma^2)."""
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)  # (B, D)

    def _log_weights(
        self,
        x: Tensor,
        mu: Tensor,
        logvar: Tensor,
        eps: Tensor,
        components: tuple[Tensor, Tensor] | None,
    ) -> Tensor:
        """log p(x, z_i) - log q(z_i|x) for z_i = mu + sigma * eps_i; eps (k, B, D) -> (k, B)."""
        k, b, d = eps.shape
        std = torch.exp(0.5 * logvar)
        z = mu + std * eps  # (k, B, D)
        params = self.decode(z.reshape(k * b, d))
        x_rep = x.expand(k, *x.shape).reshape(k * b, *x.shape[1:])
        log_px = self.log_px_given_z(x_rep, params).view(k, b)
        log_pz = self.log_prior(z, components)  # (k, B)
        log_qz = -0.5 * (eps.pow(2) + math.log(2 * math.pi) + logvar).sum(-1)  # (k, B)
        return log_px + log_pz - log_qz

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Negative ELBO (or IWAE bound for train_k > 1) per example, mean over the batch."""
        cfg = self.config
        intensities = batch_inputs(batch)  # (B, C, H, W) in [0, 1]
        if self.training and cfg.prior == "vamp" and not self.pseudo_ready:
            self._init_pseudo_inputs(intensities)
        x = self.prepare(intensities)
        if self.training and cfg.shift > 0:
            x = self._shift(x)
        mu, logvar = self.encode(x)  # (B, D) each
        components = self.prior_components()  # None for N(0, I)
        eps = torch.randn(cfg.train_k, *mu.shape, device=x.device, dtype=mu.dtype)  # (k, B, D)
        if components is None:
            kl_per_dim = self.kl_divergence(mu, logvar)  # (B, D), closed form
            kl = kl_per_dim.sum(1)  # (B,)
        else:  # one-sample estimate per draw: log q(z|x) - log p(z), averaged over the k draws
            z = mu + torch.exp(0.5 * logvar) * eps  # (k, B, D)
            log_qz = -0.5 * (eps.pow(2) + math.log(2 * math.pi) + logvar).sum(-1)  # (k, B)
            kl = (log_qz - self.log_prior(z, components)).mean(0)  # (B,)
        if cfg.train_k == 1:
            params = self.decode(mu + torch.exp(0.5 * logvar) * eps[0])  # reparameterization
            recon = -self.log_px_given_z(x, params)  # (B,)
            weight: float | Tensor = cfg.beta
            if self.training and cfg.kl_warmup_steps > 0:  # a tensor: no host-device sync
                weight = cfg.beta * ((self.num_steps + 1) / cfg.kl_warmup_steps).clamp(max=1.0)
            if components is None:
                kl_term = kl_per_dim.mean(0)  # (D,) batch-mean KL per dim
                if self.training and cfg.free_bits > 0:
                    kl_term = kl_term.clamp(min=cfg.free_bits)
                kl_loss = kl_term.sum()
            else:
                kl_loss = kl.mean()
            loss = recon.mean() + weight * kl_loss
            elbo = -(recon + kl)
        else:
            log_w = self._log_weights(x, mu, logvar, eps, components)  # (k, B)
            bound = torch.logsumexp(log_w, 0) - math.log(cfg.train_k)  # (B,)
            loss = -bound.mean()
            recon = -log_w.mean(0).detach() - kl.detach()  # E_q[-log p(x|z)], as -ELBO - KL
            elbo = log_w.mean(0).detach()
        if self.training:
            self.num_steps += 1
        return {
            "loss": loss,
            "recon": recon.mean().detach(),
            "kl": kl.mean().detach(),
            "elbo": elbo.mean().detach(),  # the true ELBO (nats, <= log p(x)); -loss if plain
        }

    @torch.no_grad()
    def elbo(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Single-sample ELBO per example (B,), for already prepared x."""
        return self.log_prob(x, generator=generator, k=1)

    @torch.no_grad()
    def log_prob(
        self, x: Tensor, *, generator: torch.Generator | None = None, k: int | None = None
    ) -> Tensor:
        """IWAE bound L_k on log p(x) in nats, (B,), for already prepared x (see `prepare`).

        log p(x) >= logsumexp_i [log p(x|z_i) + log p(z) - log q(z_i|x)] - log k,
        z_i ~ q(z|x), i = 1..k (k = config.iwae_k). Samples are decoded in chunks of at most
        config.iwae_batch images, so k in the thousands fits in memory.
        """
        k = k or self.config.iwae_k
        mu, logvar = self.encode(x)  # (B, D)
        components = self.prior_components()
        chunk = max(1, self.config.iwae_batch // x.shape[0])
        log_w = []
        for start in range(0, k, chunk):
            n = min(chunk, k - start)
            # one draw per sample, so the result does not depend on the chunk size
            eps = torch.stack(
                [torch.randn(mu.shape, generator=generator, device=mu.device) for _ in range(n)]
            )  # (n, B, D)
            log_w.append(self._log_weights(x, mu, logvar, eps, components))
        return torch.logsumexp(torch.cat(log_w), 0) - math.log(k)  # (B,)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, **cond: Any) -> Tensor:
        """n images (n, C, H, W) in [0, 1] from z ~ p(z) (N(0, I) or the VampPrior mixture).

        Returns the decoder's means, not pixel draws: Bernoulli probabilities for "bernoulli",
        locations clamped to [0, 1] for the discretized likelihoods (the usual VAE figure;
        draw `torch.bernoulli(samples)` for binary images).
        """
        return self.decode_latent(self.sample_latent(n, generator=generator))

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """z ~ p(z): (n, latent_dim)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=device)  # (n, D)
        components = self.prior_components()
        if components is not None:  # pick a component uniformly, then z ~ q(z | u_k)
            mu_k, logvar_k = components
            k = torch.randint(0, mu_k.shape[0], (n,), generator=generator, device=device)
            z = mu_k[k] + torch.exp(0.5 * logvar_k[k]) * z
        return z

    def decode_latent(self, z: Tensor) -> Tensor:
        """z (n, latent_dim) -> the decoder's means (n, C, H, W) in [0, 1], as `sample`."""
        return self.mean(self.decode(z))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Decoder mean at the posterior mean: x (B, C, H, W) -> (B, C, H, W) in [0, 1]."""
        mu, _ = self.encode(x)
        return self.mean(self.decode(mu))

    @torch.no_grad()
    def interpolate(self, x_a: Tensor, x_b: Tensor, steps: int = 8) -> Tensor:
        """Linear interpolation between posterior means: (B, ...) x2 -> (B, steps, C, H, W)."""
        mu_a, _ = self.encode(x_a)
        mu_b, _ = self.encode(x_b)
        t = torch.linspace(0, 1, steps, device=mu_a.device)[None, :, None]  # (1, S, 1)
        z = (1 - t) * mu_a[:, None] + t * mu_b[:, None]  # (B, S, D)
        images = self.mean(self.decode(z.flatten(0, 1)))  # (B * S, C, H, W)
        return images.view(x_a.shape[0], steps, *images.shape[1:])

    # ---- figures ----------------------------------------------------------------------------

    @torch.no_grad()
    def visualize(self, data: Dataset, out_dir: Path, *, generator: torch.Generator) -> list[Path]:
        """Write reconstructions.png, samples.png, interpolations.png and latent.png."""
        from genlab.imaging import save_image

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        n = min(len(data), 1000)
        # a seeded random subset: splits are often sorted by class, and the interpolation
        # pairs below should join different digits
        batch = data.batch(torch.randperm(len(data), generator=generator)[:n])
        x = self.prepare(batch_inputs(batch).to(device), generator=generator)
        labels = batch_labels(batch)
        paths = []

        m = min(n, 16)
        recon = self.reconstruct(x[:m])
        paths.append(save_image(torch.cat([x[:m], recon]), out_dir / "reconstructions.png", nrow=m))
        samples = self.sample(64, generator=generator)
        paths.append(save_image(samples, out_dir / "samples.png", nrow=8))
        pairs = min(n // 2, 6)
        if pairs > 0:
            strips = self.interpolate(x[:pairs], x[pairs : 2 * pairs], steps=10)
            paths.append(save_image(strips.flatten(0, 1), out_dir / "interpolations.png", nrow=10))
        paths.append(self._latent_plot(x, labels, out_dir / "latent.png"))
        self.train(was_training)
        return paths

    def _latent_plot(self, x: Tensor, labels: Tensor | None, path: Path) -> Path:
        """Scatter of posterior means (PCA to 2-D when D > 2), coloured by label."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        mu, _ = self.encode(x)
        mu = mu.float().cpu()
        if mu.shape[1] > 2 and mu.shape[0] > 2:
            centred = mu - mu.mean(0)
            _, _, v = torch.linalg.svd(centred, full_matrices=False)  # PCA by SVD
            points, title = centred @ v[:2].T, "posterior means, first 2 principal components"
        else:
            points = F.pad(mu, (0, max(0, 2 - mu.shape[1])))
            title = "posterior means"
        fig, ax = plt.subplots(figsize=(5, 5))
        colour = None if labels is None else labels.cpu().numpy()
        scatter = ax.scatter(points[:, 0], points[:, 1], c=colour, cmap="tab10", s=6)
        if labels is not None:
            fig.colorbar(scatter, ax=ax)
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path
