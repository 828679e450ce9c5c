"""MusicVAE (Roberts et al. 2018, "A Hierarchical Latent Vector Model for Learning Long-Term
Structure in Music").

A melody of T events x_1 .. x_T (genlab.notes' melody encoding: 16 steps per 4/4 bar, each step
a note-on of one of 88 pitches, a note-off or "no event"; a chorale interleaves four voices per
step) is encoded to a latent z and decoded back by a recurrent VAE:

    q(z | x) = N(mu(x), diag sigma(x)^2)        a bidirectional LSTM over x; mu and sigma from
                                                 its final forward and backward states
                                                 (sigma = softplus(W h + b), as Magenta)
    p(x | z) = prod_t p(x_t | x_<t, z)          an LSTM decoder, teacher-forced in training
    ELBO(x)  = E_q[log p(x | z)] - KL(q(z|x) || N(0, I))  <= log p(x)

Two decoders (`decoder`):
- "flat": one LSTM over all T steps; z initialises its state (tanh(W z), every layer's h and
  c) and is concatenated to the input of every step.
- "hierarchical" (the paper's contribution, Sec. 3.2): a *conductor* LSTM runs U = T / bar
  steps (one per bar) from the state tanh(W z), its input all zeros (Magenta's
  `disable_autoregression`), giving one embedding c_u per bar; the bar decoder, a shared LSTM,
  decodes bar u from the state tanh(W' c_u) with c_u concatenated to every input. Its state
  restarts at every bar, so each bar can only be what its c_u says: the decoder cannot ignore
  z ("posterior collapse", which the flat 16-bar model suffers). Across bars only the tokens
  carry over: bar u's first input is the last event of bar u - 1 (teacher-forced in training,
  the decoder's own in sampling), as in Magenta's hierarchical decoder.

The objective (Sec. 3.1, Magenta's base_model):

    loss = E_x[ -log p(x | z) + beta_step * max(KL - free_bits * ln 2, 0) ]
    beta_step = max_beta * (1 - beta_rate^step)          (the KL weight anneals up to max_beta)

with free bits: the first `free_bits` bits of KL per sequence cost nothing, so the encoder uses
them. The true ELBO (beta = 1, no free bits) is logged as "elbo" (so `genlab evaluate` reports the
test split's) and `elbo(batch)` gives it per window.

Scheduled sampling (Bengio et al. 2015, Sec. 3.3 of the paper): in training, each decoder input
is, with probability p_step, the decoder's own sample at the previous step instead of the true
event; "inverse_sigmoid": p_step = 1 - k / (k + exp(step / k)), k = `sampling_rate`
(Magenta's 1000; the CPU default is smaller because a CPU run takes fewer steps); "constant":
p = `sampling_rate`; "none": teacher forcing. With p > 0 the decoder runs step by step (each
example's draw and mixing per step); with p = 0 all steps in one LSTM call.

Reconstruction accuracy (the paper's Table 1): z = mu(x) of a held-out window, then
- teacher-forced: argmax p(x_t | true x_<t, z) == x_t;
- sampled: the decoder's own greedy output, fed back (argmax at every step) == x_t;
both the fraction of events right (`reconstruction_accuracy`). The sampled one is what shows
whether z carries the melody.

Sampling: z ~ N(0, I), then events by inverse CDF from uniforms drawn with z (all randomness
first, contract.LatentSampler), at `temperature` (0: argmax). Interpolation: slerp between two
melodies' mu (genlab.music.compose.interpolate). Attribute vectors (Sec. 5.3): the mean mu of the windows with the
most of an attribute (top quarter) minus that of the windows with the least (bottom quarter)
(`attribute_vector`), added to z with a scale (`genlab compose --attribute`).

Deviations: an embedding of the event instead of the one-hot input (the same function: one-hot
times a matrix); the event START (genlab.notes.START, the first input) is never an output:
its logit is -inf. CPU-sized defaults (`gpu` preset: the paper's sizes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.contract import option
from genlab.data.base import batch_inputs
from genlab.errors import GenlabError
from genlab.notes import START
from genlab.token_assets import TokenizerAssets

DECODERS = ("flat", "hierarchical")
SCHEDULES = ("inverse_sigmoid", "constant", "none")


@dataclass
class MusicVAEConfig:
    data_shape: tuple[int, ...] = (32,)  # (T,): events per window; from the data
    vocab_size: int = 91  # events + START; from the data
    bar_length: int = 16  # tokens per bar (16 steps x voices); from the data
    bars: int = 2  # the windows it models (bars of the data): data.bars defaults to it
    decoder: str = "flat"  # "flat" | "hierarchical"
    z_size: int = 128
    embedding_size: int = 64  # the event embedding (the one-hot input times a matrix)
    encoder_size: int = 256  # units per direction
    encoder_layers: int = 1
    decoder_size: int = 256
    decoder_layers: int = 2
    conductor_size: int = 256  # hierarchical: the conductor's units
    conductor_layers: int = 2
    free_bits: float = 0.0  # bits of KL per sequence that cost nothing
    max_beta: float = 0.2  # the KL weight it anneals to
    beta_rate: float = 0.999  # beta_step = max_beta * (1 - beta_rate^step)
    sampling_schedule: str = "inverse_sigmoid"  # scheduled sampling: | "constant" | "none"
    sampling_rate: float = 200.0  # inverse_sigmoid: k; constant: the probability
    dropout: float = 0.0  # between decoder layers

    def validate(self) -> None:
        if len(self.data_shape) != 1:
            raise ValueError(f"MusicVAE models event sequences (T,), got {self.data_shape}")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        if self.sampling_schedule not in SCHEDULES:
            raise ValueError(
                f"sampling_schedule must be one of {', '.join(SCHEDULES)}, "
                f"got {self.sampling_schedule!r}"
            )
        if self.bar_length < 1:
            raise ValueError(
                "MusicVAE models bars of music and this data has none (bar_length 0): train it "
                "on music events, e.g. --data bach-melodies"
            )
        if self.vocab_size <= START:
            raise ValueError(
                f"MusicVAE reads genlab's music events (a vocabulary of {START + 1}), got "
                f"vocab_size {self.vocab_size}"
            )
        sizes = ("bars", "z_size", "embedding_size", "encoder_size")
        sizes += ("encoder_layers", "decoder_size", "decoder_layers", "conductor_size")
        sizes += ("conductor_layers",)
        for name in sizes:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.free_bits < 0 or self.max_beta < 0 or not 0 <= self.beta_rate < 1:
            raise ValueError("free_bits and max_beta must be >= 0 and beta_rate in [0, 1)")
        if self.sampling_rate < 0 or not 0 <= self.dropout < 1:
            raise ValueError("sampling_rate must be >= 0 and dropout in [0, 1)")
        if self.sampling_schedule == "constant" and self.sampling_rate > 1:
            raise ValueError("a constant sampling_rate is a probability: at most 1")


def check_windows(config: MusicVAEConfig) -> None:
    """The data's windows are the `bars` bars the model is configured for (a ValueError
    saying which option to set otherwise)."""
    length = config.data_shape[0]
    if length != config.bars * config.bar_length:
        raise ValueError(
            f"this MusicVAE models {config.bars}-bar windows ({config.bars * config.bar_length} "
            f"events) but the data gives {length} events (set data.bars={config.bars}, or "
            f"bars={length // config.bar_length} for the model)"
        )


class StateFrom(nn.Module):
    """An LSTM's initial (h, c), every layer, from an embedding: tanh(W e + b) (Magenta's
    initial_cell_state_from_embedding)."""

    def __init__(self, inputs: int, layers: int, size: int):
        super().__init__()
        self.layers, self.size = layers, size
        self.linear = nn.Linear(inputs, 2 * layers * size)

    def forward(self, e: Tensor) -> tuple[Tensor, Tensor]:
        state = torch.tanh(self.linear(e)).view(-1, 2, self.layers, self.size)
        return state[:, 0].transpose(0, 1).contiguous(), state[:, 1].transpose(0, 1).contiguous()


class MusicVAE(TokenizerAssets, nn.Module):
    Config = MusicVAEConfig
    data_kinds = ("text",)  # token sequences (contract.py); the music datasets' events
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 2000,
        "batch_size": 64,
        "lr": 1e-3,
        "warmup_steps": 50,
        "log_every": 50,
        "eval_every": 250,
        "eval_batches": 20,
        "sample_every": 1000,
        "sample_n": 8,
        "checkpoint_every": 500,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # the paper's sizes (Magenta's cat-mel_2bar_big; for 16 bars see data_defaults)
        "gpu": {
            "model_config": {
                "z_size": 512,
                "embedding_size": 90,
                "encoder_size": 2048,
                "decoder_size": 2048,
                "decoder_layers": 3,
                "conductor_size": 1024,
                "conductor_layers": 2,
                "max_beta": 0.5,
                "beta_rate": 0.99999,
                "sampling_rate": 1000.0,
            },
            "train": {"steps": 50000, "batch_size": 512, "lr": 1e-3, "warmup_steps": 500},
        }
    }

    @dataclass(frozen=True)
    class SampleOptions:
        """The options of `sample` (contract.HasSampleOptions)."""

        temperature: float = option(
            1.0, help="divides the logits: below 1 sharper, above 1 more random; 0 = argmax", ge=0
        )

    @classmethod
    def data_defaults_for(cls, config: MusicVAEConfig) -> dict[str, Any]:
        """The windows the data should give (contract.data_defaults): `bars` bars."""
        return {"bars": config.bars}

    def __init__(self, config: MusicVAEConfig):
        super().__init__()
        config.validate()
        check_windows(config)
        self.config = config
        c = config
        self.register_buffer("num_steps", torch.zeros((), dtype=torch.long))
        self.embed = nn.Embedding(c.vocab_size, c.embedding_size)
        self.encoder = nn.LSTM(
            c.embedding_size, c.encoder_size, c.encoder_layers, batch_first=True,
            bidirectional=True,
        )  # fmt: skip
        self.to_mu = nn.Linear(2 * c.encoder_size, c.z_size)
        self.to_sigma = nn.Linear(2 * c.encoder_size, c.z_size)
        self.hierarchical = c.decoder == "hierarchical"
        if self.hierarchical:
            self.conductor_state = StateFrom(c.z_size, c.conductor_layers, c.conductor_size)
            self.conductor = nn.LSTM(1, c.conductor_size, c.conductor_layers, batch_first=True)
            context = c.conductor_size  # what each bar's decoder is conditioned on: c_u
        else:
            context = c.z_size
        self.decoder_state = StateFrom(context, c.decoder_layers, c.decoder_size)
        self.decoder = nn.LSTM(
            c.embedding_size + context, c.decoder_size, c.decoder_layers, batch_first=True,
            dropout=c.dropout if c.decoder_layers > 1 else 0.0,
        )  # fmt: skip
        self.output = nn.Linear(c.decoder_size, c.vocab_size)
        self.start = START
        never = torch.zeros(c.vocab_size, dtype=torch.bool)
        never[START] = True  # START is never an output
        self.register_buffer("never", never, persistent=False)

    # --- shapes ----------------------------------------------------------------------------
    @property
    def length(self) -> int:
        return self.config.data_shape[0]

    @property
    def segments(self) -> tuple[int, int]:
        """(U, L): the decoder runs U independent segments of L events: (bars, bar_length)
        for the hierarchical decoder, (1, T) for the flat one."""
        if self.hierarchical:
            return self.config.bars, self.config.bar_length
        return 1, self.length

    # --- the encoder -------------------------------------------------------------------------
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Events (B, T) -> (mu, sigma) of q(z | x), (B, z_size) each."""
        _, (h, _) = self.encoder(self.embed(x))  # h: (layers * 2, B, size)
        final = torch.cat([h[-2], h[-1]], dim=1)  # the last layer's forward and backward
        return self.to_mu(final), F.softplus(self.to_sigma(final)) + 1e-6

    # --- the decoder ---------------------------------------------------------------------------
    def contexts(self, z: Tensor) -> Tensor:
        """z (B, D) -> what each segment is decoded from, (B, U, C): the conductor's embedding
        of every bar, or z itself for the flat decoder."""
        if not self.hierarchical:
            return z[:, None]
        bars = z.new_zeros(z.shape[0], self.config.bars, 1)
        out, _ = self.conductor(bars, self.conductor_state(z))
        return out

    def _segments(self, inputs: Tensor, contexts: Tensor) -> tuple[Tensor, Tensor, tuple]:
        """Inputs (B, T) and contexts (B, U, C) -> per segment: inputs (B U, L), contexts
        (B U, C) and each segment's initial state."""
        length = self.segments[1]
        flat_inputs = inputs.reshape(-1, length)
        flat_contexts = contexts.reshape(-1, contexts.shape[-1])
        return flat_inputs, flat_contexts, self.decoder_state(flat_contexts)

    def _logits(self, out: Tensor) -> Tensor:
        return self.output(out).float().masked_fill(self.never, float("-inf"))

    def teacher_forced(self, inputs: Tensor, contexts: Tensor) -> Tensor:
        """Logits (B, T, V) of every event given the true previous events (inputs = the events
        shifted right after START) and the segments' contexts (B, U, C)."""
        x, ctx, state = self._segments(inputs, contexts)
        steps = torch.cat([self.embed(x), ctx[:, None].expand(-1, x.shape[1], -1)], dim=2)
        out, _ = self.decoder(steps, state)
        return self._logits(out).reshape(inputs.shape[0], self.length, -1)

    def decode_steps(
        self,
        contexts: Tensor,
        choose: Any,
        *,
        first: Tensor,
        inputs: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Step-by-step decoding: at every step the logits (N, V) and the step index go to
        `choose(logits, t) -> events (N,)`, and the next input is that event (or, where
        `inputs` is given and `choose` returned -1, the true input). Segments run in order,
        bar u starting from bar u - 1's last event (`first` for the first). Returns the chosen
        events (B, T) and the logits (B, T, V)."""
        batch, (bars, length) = contexts.shape[0], self.segments
        previous, chosen, all_logits = first, [], []
        for u in range(bars):
            ctx = contexts[:, u]
            state = self.decoder_state(ctx)
            for t in range(length):
                step = torch.cat([self.embed(previous), ctx], dim=1)[:, None]
                out, state = self.decoder(step, state)
                logits = self._logits(out[:, 0])
                events = choose(logits, u * length + t)
                if inputs is not None and u * length + t + 1 < self.length:
                    truth = inputs[:, u * length + t + 1]
                    previous = torch.where(events < 0, truth, events)
                else:
                    previous = events
                chosen.append(events)
                all_logits.append(logits)
        return torch.stack(chosen, 1), torch.stack(all_logits, 1).reshape(batch, self.length, -1)

    # --- the objective ------------------------------------------------------------------------
    def sampling_probability(self) -> float:
        """p_step of scheduled sampling at the current training step (0 outside training)."""
        c = self.config
        if not self.training or c.sampling_schedule == "none" or c.sampling_rate == 0:
            return 0.0
        if c.sampling_schedule == "constant":
            return c.sampling_rate
        k, step = c.sampling_rate, float(self.num_steps)
        return 1.0 - k / (k + math.exp(min(step / k, 700.0)))

    def beta(self) -> float:
        c = self.config
        return c.max_beta * (1.0 - c.beta_rate ** float(self.num_steps))

    def _inputs_targets(self, batch: Any) -> tuple[Tensor, Tensor]:
        """(x, y) of a token batch (x = START + y[:-1], as the music datasets give it)."""
        if isinstance(batch, tuple | list) and len(batch) == 2:
            return batch[0], batch[1]
        y = batch_inputs(batch)
        return F.pad(y, (1, 0), value=self.start)[:, :-1], y

    def reconstruction_logits(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        """Training logits (B, T, V): teacher-forced, or with scheduled sampling mixing in the
        decoder's own samples with probability p_step per input."""
        contexts = self.contexts(z)
        p = self.sampling_probability()
        if p == 0.0:
            return self.teacher_forced(x, contexts)
        use_own = torch.rand(y.shape, device=y.device) < p  # (B, T): input t+1 is own sample

        def choose(logits: Tensor, t: int) -> Tensor:
            own = torch.multinomial(logits.detach().softmax(-1), 1)[:, 0]
            if t + 1 >= self.length:
                return own
            return torch.where(use_own[:, t + 1], own, torch.full_like(own, -1))

        _, logits = self.decode_steps(contexts, choose, first=x[:, 0], inputs=x)
        return logits

    def loss(self, batch: Any) -> dict[str, Tensor]:
        x, y = self._inputs_targets(batch)
        mu, sigma = self.encode(y)
        z = mu + sigma * torch.randn_like(mu)
        logits = self.reconstruction_logits(x, y, z)
        recon = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").sum(1)  # (B,)
        kl = self.kl(mu, sigma)  # (B,)
        beta = self.beta() if self.training else self.config.max_beta
        loss = (recon + free_bits_kl(kl, free_bits=self.config.free_bits, beta=beta)).mean()
        accuracy = (logits.argmax(-1) == y).float().mean()
        if self.training:
            self.num_steps += 1
        return {
            "loss": loss,
            "recon": recon.mean().detach(),
            "kl_bits": kl.mean().detach() / math.log(2),
            "elbo": -(recon + kl).mean().detach(),
            "accuracy": accuracy.detach(),
            "beta": torch.tensor(beta),
        }

    @staticmethod
    def kl(mu: Tensor, sigma: Tensor) -> Tensor:
        """KL(N(mu, sigma^2) || N(0, I)) per example, closed form, in nats."""
        return 0.5 * (mu.pow(2) + sigma.pow(2) - 1 - 2 * sigma.log()).sum(1)

    @torch.no_grad()
    def elbo(self, batch: Any, *, generator: torch.Generator | None = None) -> Tensor:
        """The ELBO of event windows in nats (a lower bound on log p(x)), one z drawn from
        q(z | x) per example: `batch` is the data's (inputs, events) or the events (B, T).
        (Not `log_prob`: the data's inputs are the events shifted after START, not x.)"""
        inputs, y = self._inputs_targets(batch)
        mu, sigma = self.encode(y)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        logits = self.teacher_forced(inputs, self.contexts(mu + sigma * eps))
        recon = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").sum(1)
        return -(recon + self.kl(mu, sigma))

    @torch.no_grad()
    def reconstruction_accuracy(self, batch: Any) -> dict[str, Tensor]:
        """The paper's Table 1 per window (B,): the fraction of events right with z = mu(x),
        teacher-forced and sampled (greedy, own outputs fed back)."""
        x, y = self._inputs_targets(batch)
        mu, _ = self.encode(y)
        contexts = self.contexts(mu)
        forced = self.teacher_forced(x, contexts).argmax(-1)
        greedy, _ = self.decode_steps(contexts, lambda logits, t: logits.argmax(-1), first=x[:, 0])
        return {
            "teacher_forced": (forced == y).float().mean(1),
            "sampled": (greedy == y).float().mean(1),
        }

    # --- sampling (contract.LatentSampler) ----------------------------------------------------
    def sample_latent(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """(n, z_size + T): z ~ N(0, I) and the T uniforms that pick the events."""
        device = self.output.weight.device
        z = torch.randn(n, self.config.z_size, generator=generator, device=device)
        u = torch.rand(n, self.length, generator=generator, device=device)
        return torch.cat([z, u], dim=1)

    @torch.no_grad()
    def decode_latent(self, latent: Tensor, *, temperature: float = 1.0) -> Tensor:
        """Events (n, T) from sample_latent's (z, uniforms): each event by inverse CDF of
        softmax(logits / temperature) at its uniform (argmax at temperature 0)."""
        z, u = latent[:, : self.config.z_size], latent[:, self.config.z_size :]
        return self.decode(z, u, temperature=temperature)

    @torch.no_grad()
    def decode(self, z: Tensor, uniforms: Tensor | None = None, *, temperature: float = 0.0):
        """Events (n, T) decoded from latents z (n, D): argmax (temperature 0) or inverse-CDF
        draws at `uniforms` (n, T)."""
        if temperature > 0 and uniforms is None:
            raise ValueError("sampling at a temperature needs uniforms")

        def choose(logits: Tensor, t: int) -> Tensor:
            if temperature == 0:
                return logits.argmax(-1)
            cdf = (logits / temperature).softmax(-1).cumsum(-1)
            index = torch.searchsorted(cdf, uniforms[:, t : t + 1].to(cdf.dtype).contiguous())[:, 0]
            return index.clamp(max=logits.shape[-1] - 1)

        first = torch.full((z.shape[0],), self.start, dtype=torch.long, device=z.device)
        events, _ = self.decode_steps(self.contexts(z), choose, first=first)
        return events

    @torch.no_grad()
    def sample(
        self, n: int, *, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> Tensor:
        """n event windows (n, T): z ~ N(0, I), events drawn at `temperature`."""
        return self.decode_latent(
            self.sample_latent(n, generator=generator), temperature=temperature
        )

    # --- latent-space tools ------------------------------------------------------------------
    @torch.no_grad()
    def embed_windows(self, y: Tensor) -> Tensor:
        """mu(x) of event windows (B, T): where a melody sits in z."""
        return self.encode(y)[0]


def free_bits_kl(kl: Tensor, *, free_bits: float, beta: float) -> Tensor:
    """The KL term of the loss: beta * max(KL - free_bits * ln 2, 0) per example (Magenta's
    free nats): KL below the free bits costs nothing and gets no gradient."""
    return beta * (kl - free_bits * math.log(2)).clamp(min=0)


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for latent spaces): (len(t), D) points
    from a to b along the great circle, scaled linearly in norm; lerp when a and b are parallel."""
    na, nb = a.norm(), b.norm()
    cos = torch.dot(a / na, b / nb).clamp(-1, 1)
    omega = torch.arccos(cos)
    t = t[:, None]
    if omega.abs() < 1e-4:
        return (1 - t) * a + t * b
    direction = (torch.sin((1 - t) * omega) * a / na + torch.sin(t * omega) * b / nb) / torch.sin(
        omega
    )
    return direction * ((1 - t) * na + t * nb)


def attribute_vector(model: MusicVAE, windows: Tensor, values: Tensor, *, quarter: float = 0.25):
    """The attribute vector of Sec. 5.3: the mean mu of the windows whose attribute `values`
    (B,) are in the top `quarter` minus the mean mu of those in the bottom `quarter` (windows
    whose value is nan, undefined, are left out). Added to a z, it moves the decoded melody
    towards more of the attribute."""
    defined = ~values.isnan()
    windows, values = windows[defined], values[defined]
    count = int(len(values) * quarter)
    order = values.argsort(stable=True)
    low, high = order[:count], order[len(values) - count :]
    if count < 1 or values[high].mean() <= values[low].mean():
        raise GenlabError(
            "an attribute vector needs windows with more and with less of the attribute"
        )
    mu = torch.cat([model.embed_windows(part) for part in windows.split(256)])
    return mu[high].mean(0) - mu[low].mean(0)
