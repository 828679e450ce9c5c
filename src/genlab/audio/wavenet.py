"""WaveNet (van den Oord et al. 2016, "WaveNet: A Generative Model for Raw Audio").

A waveform x_1 .. x_T of quantized samples is factorized by the chain rule (Eq. 1),

    p(x | h) = prod_t p(x_t | x_1, ..., x_{t-1}, h),

and one network of causal convolutions gives every conditional at once. Read bottom-up:

- Input. x_t is a code of the output's quantizer (genlab.sound). The network's input at
  position t is the code of x_{t-1} (the previous sample; silence before the first), so no layer
  ever sees the sample it predicts: for the 256-way mu-law output an embedding of the code (the
  paper's one-hot times a weight matrix), for the logistic mixture the code's amplitude through
  a 1x1 convolution (Parallel WaveNet's scalar input).
- Dilated causal convolutions (Sec. 2.1): layer l convolves with kernel k and dilation d_l,
  left-padded by (k - 1) d_l, so its output at t sees its inputs t - (k - 1) d_l .. t. The
  dilations double, 1, 2, ..., 2^(L-1), and the cycle repeats `stacks` times. The receptive
  field (the past samples one prediction depends on) is

      R = (k - 1) * stacks * (2^L - 1) + 1

  e.g. k = 2, 2 stacks of dilations 1 .. 512: R = 2,047 samples (256 ms at 8 kHz).
- Gated activation units (Eq. 2-3): z = tanh(W_f * x + V_f h + V'_f u) * sigmoid(W_g * x +
  V_g h + V'_g u), with h a learned embedding of the label (global conditioning: pitch,
  instrument, speaker) and u = Upsample(c), the data's feature sequence c (B, channels, T / hop)
  brought to the sample rate by a transposed convolution with kernel = stride = hop (learned
  upsampling, the paper's choice over repetition; frame j reaches exactly the samples
  [j hop, (j + 1) hop)), each term a 1x1 convolution per layer (local conditioning).
- Residual and skip connections (Sec. 2.4, Fig. 4): a 1x1 convolution of z is added to the
  layer's input (residual) and another goes to the output (skip); the last layer has no
  residual. Output: ReLU(sum of skips) -> 1x1 -> ReLU -> 1x1 ->
  - "mu-law" (Sec. 2.2): a 256-way softmax over sound.MU_LAW's codes (F(x) = sign(x) ln(1 + mu
    |x|) / ln(1 + mu), mu = 255, quantized to 256 levels);
  - "logistic_mixture" (PixelCNN++, Salimans et al. 2017; Parallel WaveNet, van den Oord et al.
    2018): a mixture of K logistics per sample integrated over the bins of sound.LINEAR_16
    (16-bit codes), P(k) = sum_j pi_j [sigma((e_{k+1} - mu_j) / s_j) - sigma((e_k - mu_j) /
    s_j)] with bin edges e_k, the outer bins taking the tails.

Likelihoods, in nats per example over the quantizer's codes: `conditional_log_prob(batch)` is
log p(x | the batch's label and features) (contract.AudioModel, bits per sample in `genlab
evaluate`); `log_prob(x)` is the label-free likelihood: the marginal over a uniform class prior,
log (1/K) sum_y p(x | y), for a class-conditional model (K passes), as the other families do, or
p(x) itself; a locally conditioned model has no label-free likelihood (the features are not
modelled) and says so. `loss` is the mean NLL per sample in nats (and logs bits_per_sample).

Sampling (`sample`, `synthesize`): all randomness is drawn first, one uniform per output sample
(two for the mixture: the component and the logistic), and each step takes the code by inverse
CDF, so the naive sampler (the whole network over the last R inputs for every sample) and the
fast one (fast_generation.py: per-layer queues, O(layers) per sample) give the same codes.

Deviations: a kernel-1 input layer after a shift by one sample instead of a causal input
convolution; CPU-sized defaults (2 stacks of 8 layers, 32 residual / 32 gate / 64 skip channels,
R = 511 samples = 64 ms at 8 kHz; the paper: 30 layers, R of about 300 ms at 16 kHz; `--preset
gpu` has 3 stacks of 10 layers of 64/64/256, R = 3,070 samples).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.contract import class_labels, option
from genlab.data.base import batch_inputs, batch_labels
from genlab.errors import GenlabError
from genlab.sound import LINEAR_16, MU_LAW, Quantizer

OUTPUTS = ("mu-law", "logistic_mixture")
QUANTIZERS = {"mu-law": MU_LAW, "logistic_mixture": LINEAR_16}
# the floor on a logistic's log-scale: s >= 1.1e-7, well under a 16-bit bin (3.1e-5), so the
# floor never caps the likelihood of a sharp prediction
LOG_SCALE_MIN = -16.0


@dataclass
class WaveNetConfig:
    data_shape: tuple[int, ...] = (1, 4096)  # (1, T): one segment; from the data
    sample_rate: int = 8000  # samples per second; from the data
    num_classes: int = 0  # labels of the data (0: unlabelled); from the data
    local_channels: int = 0  # channels of the data's feature sequence (0: none); from the data
    local_hop: int = 0  # samples per feature frame; from the data
    output: str = "mu-law"  # "mu-law" (256-way softmax) | "logistic_mixture" (16-bit codes)
    mixtures: int = 10  # logistic_mixture: components per sample
    stacks: int = 2  # repetitions of the dilation cycle
    layers: int = 8  # dilated layers per stack: dilations 1, 2, ..., 2^(layers - 1)
    kernel: int = 2  # k of the dilated convolutions
    residual_channels: int = 32  # channels between layers
    dilation_channels: int = 32  # channels of the gated unit z
    skip_channels: int = 64  # channels of the skip connections
    head_channels: int = 64  # channels of the output's hidden 1x1 layer
    conditional: bool = True  # global conditioning on the label, when the data has >= 2 classes
    local_conditioning: bool = True  # on the feature sequence, when the data has one
    condition_channels: int = 16  # channels of the upsampled feature sequence

    def validate(self) -> None:
        if len(self.data_shape) != 2 or self.data_shape[0] != 1:
            raise ValueError(f"WaveNet models mono audio (1, T), got data_shape {self.data_shape}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {self.output!r}")
        sizes = ("mixtures", "stacks", "layers", "residual_channels", "dilation_channels")
        sizes += ("skip_channels", "head_channels", "condition_channels", "sample_rate")
        for name in sizes:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.kernel < 2:
            raise ValueError(f"kernel must be >= 2, got {self.kernel}")
        if self.local_channels > 0 and self.local_hop < 1:
            raise ValueError("a feature sequence (local_channels > 0) needs local_hop >= 1")


def receptive_field(config: WaveNetConfig) -> int:
    """R = (k - 1) * stacks * (2^L - 1) + 1: the past samples one prediction depends on."""
    return (config.kernel - 1) * config.stacks * (2**config.layers - 1) + 1


# --- layers -------------------------------------------------------------------------------------
class CausalConv1d(nn.Conv1d):
    """Kernel k, dilation d, left-padded by (k - 1) d: output t sees inputs t - (k - 1) d .. t."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int):
        super().__init__(cin, cout, kernel, dilation=dilation)
        self.left = (kernel - 1) * dilation

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, (self.left, 0)))


def gate(pre: Tensor) -> Tensor:
    """z = tanh(filter) * sigmoid(gate), the two halves of the channels (Eq. 2)."""
    f, g = pre.chunk(2, dim=1)
    return torch.tanh(f) * torch.sigmoid(g)


class ResidualLayer(nn.Module):
    """One dilated layer: gated unit, skip 1x1 and (except the last layer) residual 1x1."""

    def __init__(self, cfg: WaveNetConfig, dilation: int, last: bool, classes: int, local: bool):
        super().__init__()
        r, g, s = cfg.residual_channels, cfg.dilation_channels, cfg.skip_channels
        self.dilation, self.skip_channels, self.residual = dilation, s, not last
        self.conv = CausalConv1d(r, 2 * g, cfg.kernel, dilation)  # W_f and W_g
        self.label = nn.Embedding(classes, 2 * g) if classes else None  # V_f h, V_g h
        self.local = nn.Conv1d(cfg.condition_channels, 2 * g, 1) if local else None  # V' u
        self.out = nn.Conv1d(g, s + (0 if last else r), 1)  # skip, then residual 1x1

    def forward(
        self, x: Tensor, labels: Tensor | None, u: Tensor | None
    ) -> tuple[Tensor | None, Tensor]:
        """x (B, R, W), labels (B,), u (B, C', W) -> (the next layer's input, the skip (B, S, W))."""
        pre = self.conv(x)  # (B, 2G, W)
        if self.label is not None:
            pre = pre + self.label(labels)[:, :, None]
        if self.local is not None:
            pre = pre + self.local(u)
        out = self.out(gate(pre))
        skip = out[:, : self.skip_channels]
        return (x + out[:, self.skip_channels :] if self.residual else None), skip


# --- output distributions ----------------------------------------------------------------------
def mixture_log_prob(codes: Tensor, params: Tensor, edges: Tensor) -> Tensor:
    """log P(codes) under a discretized logistic mixture: codes (B, T), params (B, 3K, T) =
    (mixture logits, locations, log-scales), edges (levels + 1,) of the bins -> (B, T).

    P(k) = sum_j pi_j [sigma(b_j) - sigma(a_j)], a_j = (e_k - mu_j) / s_j, b_j = (e_{k+1} -
    mu_j) / s_j; code 0 takes (-inf, e_1] and the last code [e_last, inf)."""
    logit_pi, loc, log_scale = params.chunk(3, dim=1)  # (B, K, T)
    edges = edges.to(device=params.device, dtype=params.dtype)
    inv_s = torch.exp(-log_scale.clamp(min=LOG_SCALE_MIN))
    a = (edges[codes][:, None] - loc) * inv_s  # standardized lower edge
    b = (edges[codes + 1][:, None] - loc) * inv_s  # standardized upper edge
    log_cdf_b = F.logsigmoid(b)  # log sigma(b): the whole mass of code 0
    log_sf_a = F.logsigmoid(-a)  # log(1 - sigma(a)): the whole mass of the last code
    # log(sigma(b) - sigma(a)) = log sigma(b) + log sigma(-a) + log(1 - e^(a - b))
    log_mid = log_cdf_b + log_sf_a + torch.log(-torch.expm1(a - b))
    last = len(edges) - 2
    code = codes[:, None].expand_as(a)
    log_p = torch.where(code == 0, log_cdf_b, torch.where(code == last, log_sf_a, log_mid))
    return torch.logsumexp(F.log_softmax(logit_pi, dim=1) + log_p, dim=1)


def inverse_cdf(probabilities: Tensor, u: Tensor) -> Tensor:
    """(B, K) probabilities, (B,) uniforms -> (B,) the index whose CDF interval holds u."""
    cdf = probabilities.cumsum(dim=1)
    return torch.searchsorted(cdf, u[:, None].contiguous()).clamp(max=probabilities.shape[1] - 1)[
        :, 0
    ]


# --- melodies (local conditioning on a pitch contour) ------------------------------------------
NOTE = re.compile(r"^([A-Ga-g])([#b]?)(-?\d+)$")
PITCH_CLASSES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
SCALE = (60, 62, 64, 65, 67, 69, 71, 72)  # C major, C4 .. C5: random melodies walk on it


def parse_melody(text: str) -> list[tuple[int | None, float]]:
    """ "C4:0.5 E4:0.5 G4:1 R:0.5" -> [(60, 0.5), (64, 0.5), (67, 1.0), (None, 0.5)]: a note
    name with its octave (C4 = MIDI 60, sharps #, flats b) or a MIDI number, a colon and the
    seconds it lasts; R is a rest. Anything else: a one-line ValueError."""
    notes: list[tuple[int | None, float]] = []
    for token in text.split():
        name, colon, seconds = token.partition(":")
        try:
            duration = float(seconds)
        except ValueError:
            duration = float("nan")
        if not colon or not duration > 0:
            raise ValueError(f"melody note {token!r} must be NOTE:SECONDS, e.g. C4:0.5")
        notes.append((_midi_number(name, token), duration))
    if not notes:
        raise ValueError('melody is empty; give notes like "C4:0.5 E4:0.5 G4:1"')
    return notes


def _midi_number(name: str, token: str) -> int | None:
    if name.upper() == "R":
        return None
    if name.isdigit():
        midi = int(name)
    elif match := NOTE.match(name):
        letter, accidental, octave = match.groups()
        shift = {"#": 1, "b": -1, "": 0}[accidental]
        midi = 12 * (int(octave) + 1) + PITCH_CLASSES[letter.lower()] + shift
    else:
        raise ValueError(f"melody note {token!r}: {name!r} is no note name (C4, F#3, Bb4) or MIDI")
    if not 0 <= midi <= 127:
        raise ValueError(f"melody note {token!r} is outside MIDI 0..127")
    return midi


def contour_frames(notes: list[tuple[int | None, float]], frames: int, seconds_per_frame: float):
    """(2, frames): the MIDI pitch / 127 and a voiced flag of the note sounding at each frame's
    centre (rests and the time after the melody are unvoiced, pitch 0), as the data's contour."""
    out = torch.zeros(2, frames)
    centres = (torch.arange(frames) + 0.5) * seconds_per_frame
    time = 0.0
    for midi, duration in notes:
        inside = (centres >= time) & (centres < time + duration)
        if midi is not None:
            out[0, inside], out[1, inside] = midi / 127, 1.0
        time += duration
    return out


def random_melody(seconds: float, generator: Any) -> list[tuple[int | None, float]]:
    """A seeded walk on the C major scale in notes of 0.25 to 1 s, long enough for `seconds`."""
    notes, time = [], 0.0
    where = generator.device if generator is not None else None  # a CUDA generator draws there

    def draw(low: int, high: int) -> int:
        return int(torch.randint(low, high, (1,), generator=generator, device=where))

    step = draw(0, len(SCALE))
    while time < seconds:
        step = min(max(step + draw(-2, 3), 0), len(SCALE) - 1)
        duration = 0.25 * draw(1, 5)
        notes.append((SCALE[step], duration))
        time += duration
    return notes


def melody_seconds(notes: list[tuple[int | None, float]]) -> float:
    return sum(duration for _, duration in notes)


# --- the model ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class WaveNetSampleOptions:
    """What `sample` takes besides n and the generator (contract.HasSampleOptions)."""

    seconds: float | None = option(
        None,
        help="length of each sample in seconds (default: the melody's length, else the "
        "training segment's)",
        ge=0.001,
        le=30,
    )
    label: int | None = option(
        None,
        help="the class of every sample (class-conditional models: pitch or instrument; "
        "default: the classes cycle over the samples)",
        ge=0,
        keyword="labels",
    )
    temperature: float = option(
        1.0,
        help="below 1 more conservative, above 1 more random (divides the softmax logits, "
        "scales the logistics); 0 = the most likely code",
        ge=0,
    )
    melody: str | None = option(
        None,
        help='notes for a model conditioned on a pitch contour, e.g. "C4:0.5 E4:0.5 G4:1" '
        "(note name or MIDI number : seconds, R = rest; default: a seeded random melody)",
    )
    fast: bool = option(
        True,
        help="per-layer queues (Paine et al. 2016); false: the whole network over the receptive "
        "field for every sample (the slow reference; same samples)",
        serve=False,
    )


class WaveNet(nn.Module):
    Config = WaveNetConfig
    SampleOptions: ClassVar[type] = WaveNetSampleOptions
    data_kinds = ("audio",)  # DataSpec kinds (contract.py)
    bound_name = "exact"
    # a minute on the 2-core CPU on `tones` (segments of 4096 samples at 8 kHz): 60 s of
    # training, 3.61 test bits per sample (unigram 5.35, LPC of order 511 5.89; docs/audio.md)
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 200,
        "lr": 3e-3,
        "batch_size": 4,
        "warmup_steps": 20,
        "log_every": 10,
        "eval_every": 100,
        "eval_batches": 10,
        "sample_every": 200,
        "sample_n": 2,
        "checkpoint_every": 100,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # closer to the paper: 3 stacks of dilations 1 .. 512 (R = 3,070 samples), wider layers
        "gpu": {
            "model_config": {
                "stacks": 3,
                "layers": 10,
                "residual_channels": 64,
                "dilation_channels": 64,
                "skip_channels": 256,
                "head_channels": 256,
            },
            "train": {"steps": 50000, "batch_size": 16, "lr": 1e-3, "warmup_steps": 500},
            "data": {"options": {"segment": 8192}},
        }
    }

    def __init__(self, config: WaveNetConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.conditional = config.conditional and config.num_classes >= 2
        self.local = config.local_conditioning and config.local_channels > 0
        self.mixture = config.output == "logistic_mixture"
        self._silence = int(self.quantizer.encode(torch.zeros((), device="cpu")))  # silence()
        r, c = config.residual_channels, config.condition_channels
        if self.mixture:
            self.input_layer: nn.Module = nn.Conv1d(1, r, 1)  # the previous amplitude
        else:
            self.input_layer = nn.Embedding(MU_LAW.levels, r)  # the previous mu-law code
        self.upsample = (
            nn.ConvTranspose1d(config.local_channels, c, config.local_hop, stride=config.local_hop)
            if self.local
            else None
        )
        classes = config.num_classes if self.conditional else 0
        dilations = [2**i for i in range(config.layers)] * config.stacks
        self.layers = nn.ModuleList(
            ResidualLayer(config, d, i == len(dilations) - 1, classes, self.local)
            for i, d in enumerate(dilations)
        )
        outputs = 3 * config.mixtures if self.mixture else MU_LAW.levels
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(config.skip_channels, config.head_channels, 1),
            nn.ReLU(),
            nn.Conv1d(config.head_channels, outputs, 1),
        )

    # --- what shared code reads (contract.AudioModel, ModelFacts) -----------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def quantizer(self) -> Quantizer:
        """The codes the likelihood is over: MU_LAW (softmax) or LINEAR_16 (mixture)."""
        return QUANTIZERS[self.config.output]

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.config)

    @classmethod
    def facts(cls, config: WaveNetConfig) -> dict[str, Any]:
        """The receptive field in samples and in milliseconds at the config's sample rate."""
        r = receptive_field(config)
        return {
            "receptive_field": r,
            "receptive_field_ms": round(1000 * r / config.sample_rate, 3),
            "layers": config.stacks * config.layers,
            "output": config.output,
        }

    # --- the network ------------------------------------------------------------------------
    def silence(self) -> int:
        """The code of amplitude 0: what the network reads before the first sample (a Python
        int found once, so a compiled loss sees a constant, not a data-dependent value)."""
        return self._silence

    def inputs(self, previous: Tensor) -> Tensor:
        """(B, W) codes of the previous samples -> the network's input (B, R, W)."""
        if self.mixture:
            dtype = self.input_layer.weight.dtype
            return self.input_layer(self.quantizer.decode(previous)[:, None].to(dtype))
        return self.input_layer(previous).transpose(1, 2)

    def features(self, c: Tensor | None, length: int) -> Tensor | None:
        """The feature sequence c (B, channels, frames) upsampled to (B, C', length): a
        transposed convolution, kernel = stride = hop; missing frames at the end repeat the last
        one, extra ones are cut. None for a model without local conditioning."""
        if not self.local:
            return None
        if c is None:
            raise ValueError("this WaveNet is conditioned on a feature sequence: give features")
        frames = -(-length // self.config.local_hop)  # ceil
        if c.shape[-1] < frames:
            c = F.pad(c, (0, frames - c.shape[-1]), mode="replicate")
        return self.upsample(c[..., :frames].to(self.upsample.weight.dtype))[..., :length]

    def network(self, h: Tensor, labels: Tensor | None, u: Tensor | None) -> Tensor:
        """h (B, R, W) inputs, labels (B,), u (B, C', W) features -> head outputs (B, K, W):
        256 logits, or 3K mixture parameters."""
        skips: Tensor | int = 0
        for layer in self.layers:
            next_h, skip = layer(h, labels, u)
            skips = skips + skip
            h = next_h if next_h is not None else h
        return self.head(skips)

    def outputs(self, codes: Tensor, labels: Tensor | None, c: Tensor | None) -> Tensor:
        """Codes (B, T) -> the head's outputs for every position (B, K, T), in at least fp32
        (under bf16 autocast the network runs in bf16; the sums over T stay in fp32)."""
        previous = F.pad(codes, (1, 0), value=self.silence())[:, :-1]
        out = self.network(self.inputs(previous), labels, self.features(c, codes.shape[1]))
        return out.to(torch.promote_types(out.dtype, torch.float32))

    def code_log_probs(self, codes: Tensor, out: Tensor) -> Tensor:
        """log P(code_t | the past) (B, T) from the head's outputs (B, K, T)."""
        if self.mixture:
            return mixture_log_prob(codes, out, self.quantizer.edges())
        return -F.cross_entropy(out, codes, reduction="none")

    # --- likelihoods and the loss ---------------------------------------------------------
    def _conditions(self, batch: Any) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """(x, labels or None, features or None) of a batch x, (x, y) or (x, y, c)."""
        x = batch_inputs(batch)
        labels = batch_labels(batch) if self.conditional else None
        if self.conditional and labels is None:
            raise ValueError("this WaveNet is class-conditional: it needs labelled batches")
        c = batch[2] if self.local and isinstance(batch, tuple | list) and len(batch) > 2 else None
        return x, labels, c

    def _log_prob(self, x: Tensor, labels: Tensor | None, c: Tensor | None) -> Tensor:
        codes = self.quantizer.encode(x[:, 0])  # (B, T)
        return self.code_log_probs(codes, self.outputs(codes, labels, c)).sum(1)

    def conditional_log_prob(self, batch: Any) -> Tensor:
        """log p(x | the batch's label and features) per example, exact, in nats over the
        quantizer's codes (contract.AudioModel)."""
        return self._log_prob(*self._conditions(batch))

    def log_prob(self, x: Tensor, *, generator: Any = None) -> Tensor:
        """log p(x) per example in nats, exact: the marginal over a uniform class prior for a
        class-conditional model; a locally conditioned one needs its features (a GenlabError:
        use conditional_log_prob)."""
        if self.local:
            raise GenlabError(
                "a WaveNet conditioned on features has no likelihood without them: "
                "use conditional_log_prob((x, y, c))"
            )
        if not self.conditional:
            return self._log_prob(x, None, None)
        k = self.config.num_classes
        per_class = torch.stack(
            [self._log_prob(x, torch.full((len(x),), y, device=x.device), None) for y in range(k)]
        )  # (K, B)
        return torch.logsumexp(per_class, dim=0) - math.log(k)

    def loss(self, batch: Any) -> dict[str, Tensor]:
        x = batch_inputs(batch)
        nll = -self.conditional_log_prob(batch).mean() / x.shape[-1]  # nats per sample
        return {"loss": nll, "bits_per_sample": nll.detach() / math.log(2)}

    # --- sampling ----------------------------------------------------------------------------
    def uniforms_per_sample(self) -> int:
        return 2 if self.mixture else 1

    def draw(self, out: Tensor, u: Tensor, temperature: float) -> Tensor:
        """One code per row from the head's output at one position: out (B, K), u (B, 1 or 2)
        float64 uniforms -> (B,) int64. Softmax: inverse CDF of softmax(logits / temperature);
        mixture: the component by inverse CDF of its weights, then mu + s t log(v / (1 - v)),
        the logistic's inverse CDF, quantized."""
        out = out.double()
        if not self.mixture:
            if temperature == 0:
                return out.argmax(dim=1)
            return inverse_cdf(torch.softmax(out / temperature, dim=1), u[:, 0])
        logit_pi, loc, log_scale = out.chunk(3, dim=1)  # (B, K) each
        if temperature == 0:
            j = logit_pi.argmax(dim=1)
            return self.quantizer.encode(loc.gather(1, j[:, None])[:, 0])
        j = inverse_cdf(torch.softmax(logit_pi / temperature, dim=1), u[:, 0])[:, None]
        s = torch.exp(log_scale.clamp(min=LOG_SCALE_MIN)).gather(1, j)[:, 0] * temperature
        v = u[:, 1].clamp(1e-12, 1 - 1e-12)
        return self.quantizer.encode(loc.gather(1, j)[:, 0] + s * (torch.log(v) - torch.log1p(-v)))

    def labels_for(self, n: int, labels: Any, device: torch.device) -> Tensor | None:
        """One label per row: the one given, n given, or classes cycling 0, 1, ..., K-1."""
        if not self.conditional:
            if labels is not None:
                raise ValueError("this WaveNet is not class-conditional")
            return None
        return class_labels(n, labels, self.config.num_classes, device)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: Any = None,
        seconds: float | None = None,
        labels: Any = None,
        temperature: float = 1.0,
        melody: str | None = None,
        fast: bool = True,
    ) -> Tensor:
        """n waveforms (n, 1, T) in [-1, 1]. T: `seconds` at the sample rate, else the melody's
        length, else the training segment's. A locally conditioned model follows `melody`
        (parse_melody) or a random one drawn from `generator` first; `fast=False` is the naive
        sampler (same samples)."""
        device = next(self.parameters()).device
        notes = parse_melody(melody) if melody is not None else None
        if notes is not None and not self.local:
            raise ValueError("melody is for a WaveNet conditioned on a pitch contour")
        if seconds is None and notes is not None:
            seconds = min(melody_seconds(notes), 30.0)
        length = (
            self.config.data_shape[-1] if seconds is None else round(seconds * self.sample_rate)
        )
        features = None
        if self.local:
            features = self._contour(n, length, notes, generator).to(device)
        y = self.labels_for(n, labels, device)
        return self.synthesize(
            n,
            length,
            generator=generator,
            labels=y,
            features=features,
            temperature=temperature,
            fast=fast,
        )

    def _contour(self, n: int, length: int, notes: Any, generator: Any) -> Tensor:
        """(n, 2, frames) pitch contours: of `notes`, or a random melody per row."""
        if self.config.local_channels != 2:
            raise ValueError(
                f"this WaveNet reads {self.config.local_channels}-channel features, not a pitch "
                "contour: use synthesize(..., features=c)"
            )
        hop = self.config.local_hop
        frames = -(-length // hop)
        seconds = length / self.sample_rate
        melodies = [notes or random_melody(seconds, generator) for _ in range(n)]
        return torch.stack([contour_frames(m, frames, hop / self.sample_rate) for m in melodies])

    @torch.no_grad()
    def synthesize(
        self,
        n: int,
        length: int,
        *,
        generator: Any = None,
        labels: Tensor | None = None,
        features: Tensor | None = None,
        temperature: float = 1.0,
        fast: bool = True,
    ) -> Tensor:
        """n waveforms (n, 1, length) in [-1, 1] for given labels (n,) and features (n,
        channels, frames). All the uniforms are drawn first; then the fast sampler
        (fast_generation.generate) or the naive one takes the same codes from them."""
        from genlab.audio.fast_generation import generate

        if length < 1:
            raise ValueError(f"a sample needs at least one sample point, got length {length}")
        device = next(self.parameters()).device
        shape = (n, length, self.uniforms_per_sample())
        uniforms = torch.rand(shape, generator=generator, device=device, dtype=torch.float64)
        u = self.features(features, length)
        sampler = generate if fast else generate_naive
        codes = sampler(self, uniforms, labels, u, temperature)  # (n, length)
        return self.quantizer.decode(codes)[:, None].float()

    # --- figures -----------------------------------------------------------------------------
    def visualize(self, data: Any, out_dir: Any, *, generator: torch.Generator) -> list[Path]:
        """waveforms.png and spectrograms.png of 4 samples and of the 4 held-out clips whose
        labels and features they are conditioned on, and the samples as sample-K.wav."""
        from genlab.sound import spectrogram_figure, waveform_figure, write_wav

        out_dir = Path(out_dir)
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters()).device
            m = min(len(data), 4)
            batch = data.batch(torch.randperm(len(data), generator=generator)[:m])
            x, labels, c = self._conditions(batch)
            length = x.shape[-1]
            samples = self.synthesize(
                m,
                length,
                generator=generator,
                labels=None if labels is None else labels.to(device),
                features=None if c is None else c.to(device),
            ).cpu()
            rows = [*samples[:, 0], *x[:, 0]]
            titles = [f"sample {i}" for i in range(m)] + [f"held-out {i}" for i in range(m)]
            rate = self.sample_rate
            paths = [
                waveform_figure(rows, rate, out_dir / "waveforms.png", titles=titles),
                spectrogram_figure(rows, rate, out_dir / "spectrograms.png", titles=titles),
            ]
            paths += [
                write_wav(out_dir / f"sample-{i}.wav", s, rate) for i, s in enumerate(samples)
            ]
            return paths
        finally:
            self.train(was_training)


def generate_naive(
    model: WaveNet, uniforms: Tensor, labels: Tensor | None, u: Tensor | None, temperature: float
) -> Tensor:
    """The reference sampler: for every new sample, the whole network over the last R inputs
    (the receptive field), of which only the last position's output is used. -> (B, T) codes."""
    n, length = uniforms.shape[:2]
    r = model.receptive_field
    codes = torch.full((n, length + 1), model.silence(), device=uniforms.device)  # silence first
    for t in range(length):
        start = max(0, t - r + 1)  # network positions start..t read codes start-1..t-1
        window = model.inputs(codes[:, start : t + 1])  # codes[:, i] is the code of sample i-1
        out = model.network(window, labels, None if u is None else u[..., start : t + 1])
        codes[:, t + 1] = model.draw(out[..., -1], uniforms[:, t], temperature)
    return codes[:, 1:]
