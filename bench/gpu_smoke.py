"""GPU smoke benchmark: every registered model at its `gpu` preset, fp32 and bf16, eager and
compiled: steps/s, samples/s, peak memory, and GPT's model-FLOPs utilisation (MFU).

    python bench/gpu_smoke.py [--steps 200] [--warmup 20] [--models gpt,glow]
        [--precisions fp32,bf16] [--compile both] [--peak-tflops 989] [--out FILE]

One step is one optimizer step as the model's own loop takes it, without the loop's logging
and checkpoints:
- likelihood models (genlab.training.loop): the loss under the loop's autocast, through the
  loop's torch.compile wrapper when compiled, backward, gradient clipping, the loop's AdamW,
  the EMA update when the recipe keeps one;
- adversarial models (genlab.gan.train): n_critic discriminator updates (and the model's
  after-step hook, e.g. WGAN's clipping), one generator update, the generator's EMA. That loop
  has no --compile, so these run eagerly only.
Settings are the model's `train_defaults` with its `gpu` preset on top (batch size, optimizer,
n_critic, clipping). Data are synthetic batches made on the device (the speed of these models
does not depend on the values): 8-bit 1x28x28 images with 10 classes, as the presets' MNIST,
or token windows of the preset's block size from a 65-symbol vocabulary (tinyshakespeare's).

Timing: `--warmup` steps first (torch.compile compiles there, cuDNN picks its kernels, the
allocator fills), then `--steps` steps between two synchronisations; the peak memory is
torch.cuda.max_memory_allocated after the statistics are reset for each run. samples/s is
examples per step (the batch size) times steps/s. MFU (GPT only) is the model FLOPs of a step,
6 N + 12 L H Q T per token (N parameters without the position embedding, L layers, H heads of
Q channels, T tokens of context: the PaLM paper's appendix B, as nanoGPT counts), against the
GPU's dense bf16 peak (the table below, or --peak-tflops) for both precisions.

Agents and pg-lm are not timed here (`timed`): bench/rl.py and bench/pg_lm.py measure them.
Runs on CPU too (`--device cpu`), with tiny configs: tests/test_gpu_smoke.py runs this script
end to end that way so it cannot rot. Needs torch (with numpy) and genlab's source only:
    PYTHONPATH=src python bench/gpu_smoke.py
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json

# Dense bf16 tensor-core peaks in TFLOP/s (NVIDIA's data sheets give them with sparsity: half
# of those). Matched as substrings of torch.cuda.get_device_name, longest name first.
PEAK_BF16_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H200 NVL": 835.0,
    "GH200": 989.5,
    "H200": 989.5,
    "H100": 989.5,
    "H800": 989.5,
    "A100": 312.0,
    "A800": 312.0,
    "L40S": 362.0,
    "L40": 181.0,
    "L4": 121.0,
}
IMAGE = (1, 28, 28)  # the presets' MNIST
VOCAB = 65  # tinyshakespeare's characters
MUSIC_VOCAB = 91  # genlab.notes: 90 events and START (90), only ever an input
CLASSES = 10


# --- settings ---------------------------------------------------------------------------------
@dataclasses.dataclass
class Setup:
    name: str
    model_config: Any
    train: Any  # the model loop's TrainConfig
    spec: Any  # genlab.data.base.DataSpec


def setup_for(name: str, args: argparse.Namespace) -> Setup:
    """The model's Config and TrainConfig at its gpu preset (or --model-configs' tiny one)."""
    from genlab.config import from_dict, to_dict
    from genlab.contract import config_for_data, data_kinds, train_defaults, trainer_module
    from genlab.data.base import DataSpec
    from genlab.registry import default_config, model_class

    cls = model_class(name)
    preset = getattr(cls, "presets", {}).get("gpu")
    if preset is None:
        raise SystemExit(f"{name} has no gpu preset")
    text = "block_size" in {f.name for f in dataclasses.fields(cls.Config)}
    options = preset.get("data", {}).get("options", {})
    if "audio" in (data_kinds(cls) or ()):  # mono segments at 8 kHz, labelled
        length = args.audio_length or options.get("segment") or default_config(name).data_shape[-1]
        spec = DataSpec("audio", (1, length), num_classes=CLASSES, sample_rate=8000)
    elif "bar_length" in {f.name for f in dataclasses.fields(cls.Config)}:  # music events
        bars = default_config(name).bars
        extra = {"steps_per_bar": 16, "voices": 1}
        spec = DataSpec("text", (bars * 16,), vocab_size=MUSIC_VOCAB, extra=extra)
    elif text:
        block = args.block_size or options.get("block_size")
        spec = DataSpec("text", (block or default_config(name).block_size,), vocab_size=VOCAB)
    else:
        spec = DataSpec("image", args.image_shape, num_classes=CLASSES)
    changes = args.model_configs.get(name, preset.get("model_config", {}))
    base = to_dict(config_for_data(default_config(name), spec))
    model_config = from_dict(cls.Config, {**base, **changes}, prefix=f"{name}.")
    values = {**train_defaults(cls, model_config), **preset.get("train", {})}
    if args.batch_size:
        values["batch_size"] = args.batch_size
    train = from_dict(trainer_module(cls).TrainConfig, values, prefix=f"{name}.train.")
    return Setup(name, model_config, train, spec)


def synthetic_batches(spec: Any, batch_size: int, device: torch.device, count: int = 4) -> list:
    g = torch.Generator(device="cpu").manual_seed(0)
    out = []
    for _ in range(count):
        if spec.kind == "text" and spec.extra.get("steps_per_bar"):  # y events, x = START + y
            y = torch.randint(0, MUSIC_VOCAB - 1, (batch_size, spec.shape[0]), generator=g)
            x = torch.cat([torch.full((batch_size, 1), MUSIC_VOCAB - 1), y[:, :-1]], dim=1)
            out.append((x.to(device), y.to(device)))
        elif spec.kind == "text":
            ids = torch.randint(0, spec.vocab_size, (batch_size, spec.shape[0] + 1), generator=g)
            out.append((ids[:, :-1].to(device), ids[:, 1:].to(device)))
        else:
            x = torch.randint(0, 256, (batch_size, *spec.shape), generator=g).float() / 255
            y = torch.randint(0, spec.num_classes, (batch_size,), generator=g)
            out.append((x.to(device), y.to(device)))
    return out


# --- one training step, as the loops take it ----------------------------------------------------
def likelihood_step(model, setup: Setup, device: torch.device, precision: str, compiled: bool):
    from genlab.training.ema import EMA
    from genlab.training.loop import _compiled, _LossModule, autocast_context, make_optimizer

    cfg = setup.train
    optimizer = make_optimizer(model, cfg)
    loss_fn = _compiled(_LossModule(model), compiled)
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    params = [p for p in model.parameters() if p.requires_grad]
    clip = cfg.grad_clip if cfg.grad_clip > 0 else math.inf

    def step(batch) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with autocast_context(device, precision):
            loss = loss_fn(batch)["loss"].float()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
        if ema is not None:
            ema.update(model)
        return loss.detach()

    return step


def adversarial_step(model, setup: Setup, device: torch.device, precision: str):
    from genlab.contract import trainer_module
    from genlab.training.ema import EMA
    from genlab.training.loop import autocast_context

    loop, cfg = trainer_module(type(model)), setup.train
    G, D = model.generator, model.discriminator
    opt_g = loop.make_optimizer(G.parameters(), cfg.lr_g, cfg)
    opt_d = loop.make_optimizer(D.parameters(), cfg.lr_d, cfg)
    ema = EMA(G, cfg.ema_decay) if cfg.ema_decay > 0 else None
    after_d_step = getattr(model, "after_discriminator_step", None)
    counter = {"step": 0}

    def update(player, optimizer, loss) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.float().backward()
        torch.nn.utils.clip_grad_norm_(list(player.parameters()), math.inf)  # the loop's norm
        optimizer.step()

    def step(batch) -> torch.Tensor:
        tricks = loop.tricks_at(counter["step"], cfg)
        for _ in range(cfg.n_critic):
            with autocast_context(device, precision):
                d_loss = model.discriminator_loss(batch, tricks, counter["step"])["loss"]
            update(D, opt_d, d_loss)
            if after_d_step is not None:
                after_d_step()
        D.requires_grad_(False)
        with autocast_context(device, precision):
            g_loss = model.generator_loss(batch, tricks, counter["step"])["loss"]
        update(G, opt_g, g_loss)
        D.requires_grad_(True)
        if ema is not None:
            ema.update(G)
        counter["step"] += 1
        return (d_loss.detach() + g_loss.detach()).float()

    return step


# --- measurement --------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gpt_flops_per_step(model, setup: Setup) -> float:
    """6 N + 12 L H Q T model FLOPs per token (forward and backward), times the step's tokens."""
    cfg, batch = setup.model_config, setup.train.batch_size
    n = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("wpe."))
    t = setup.spec.shape[0]
    per_token = 6 * n + 12 * cfg.n_layer * cfg.n_head * (cfg.n_embd // cfg.n_head) * t
    return per_token * t * batch


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):
        if key in name:
            return PEAK_BF16_TFLOPS[key]
    return None


def run_one(setup: Setup, precision: str, compiled: bool, args, device) -> dict[str, Any]:
    """Build the model afresh, warm up, time --steps steps; one result row."""
    from genlab.contract import AdversarialModel
    from genlab.registry import model_class

    row: dict[str, Any] = {
        "model": setup.name,
        "precision": precision,
        "compile": compiled,
        "batch_size": setup.train.batch_size,
    }
    if compiled:
        torch._dynamo.reset()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    model = model_class(setup.name)(setup.model_config).to(device).train()
    row["parameters"] = sum(p.numel() for p in model.parameters())
    if isinstance(model, AdversarialModel):
        step = adversarial_step(model, setup, device, precision)
    else:
        step = likelihood_step(model, setup, device, precision, compiled)
    batches = synthetic_batches(setup.spec, setup.train.batch_size, device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(args.warmup):
            step(batches[i % len(batches)])
        sync(device)
        start = time.perf_counter()
        for i in range(args.steps):
            loss = step(batches[i % len(batches)])
        sync(device)
        seconds = time.perf_counter() - start
    row["steps_per_s"] = args.steps / seconds
    row["samples_per_s"] = row["steps_per_s"] * setup.train.batch_size
    row["last_loss"] = float(loss)
    row["peak_mib"] = (
        torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    )
    if setup.name == "gpt":
        peak = peak_tflops(device, args.peak_tflops)
        achieved = gpt_flops_per_step(model, setup) * row["steps_per_s"] / 1e12
        row["model_tflops"] = achieved
        row["mfu"] = achieved / peak if peak else None
    notes = {
        str(w.message).split(";")[0] for w in caught if "torch.compile failed" in str(w.message)
    }
    if notes:
        row["note"] = "; ".join(sorted(notes)) + ": eager"
    return row


def variants(setup: Setup, args) -> list[tuple[str, bool]]:
    from genlab.contract import trainer_module
    from genlab.registry import model_class

    loop = trainer_module(model_class(setup.name))
    compiles = "compile" in {f.name for f in dataclasses.fields(loop.TrainConfig)}
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    modes = [m for m in modes if compiles or not m] or [False]  # no --compile: eager only
    return [(p, c) for p in args.precisions for c in modes]


def table(rows: list[dict[str, Any]]) -> str:
    header = ["model", "prec", "compile", "batch", "steps/s", "samples/s", "peak MiB", "MFU"]
    lines = [header]
    for r in rows:
        if "error" in r:
            lines.append(
                [r["model"], r["precision"], str(r["compile"]), "", "error: " + r["error"]]
            )
            continue
        lines.append(
            [
                r["model"],
                r["precision"],
                "yes" if r["compile"] else "no",
                str(r["batch_size"]),
                f"{r['steps_per_s']:.2f}",
                f"{r['samples_per_s']:.0f}",
                "-" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}",
                "-" if r.get("mfu") is None else f"{100 * r['mfu']:.1f}%",
            ]
            + ([r["note"]] if "note" in r else [])
        )
    widths = [max(len(line[i]) for line in lines if i < len(line)) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) if i < len(widths) else cell for i, cell in enumerate(line))
        for line in lines
    )


def timed(name: str) -> bool:
    """Whether this script times `name`: a model whose step is a batch through the likelihood or
    the adversarial loop. Not an agent (its step is an environment's, genlab.training.rl:
    bench/rl.py times it) nor a policy-gradient surrogate (pg-lm: its step generates text
    token by token from a bound tokenizer; bench/pg_lm.py times it)."""
    from genlab.contract import Agent, SurrogateObjective
    from genlab.registry import model_class

    cls = model_class(name)  # the protocols' methods and attributes are the class's
    return not isinstance(cls, Agent | SurrogateObjective)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from genlab.registry import MODELS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    default = ",".join(m for m in MODELS if timed(m))
    parser.add_argument("--models", default=default, help="comma-separated")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--compile", default="both", choices=("off", "on", "both"))
    parser.add_argument("--steps", type=int, default=200, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=0, help="0: the preset's")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the GPU's bf16 peak")
    parser.add_argument(
        "--model-configs",
        type=Path,
        help="JSON {model: {option: value}} replacing the presets' model_config (tiny runs)",
    )
    parser.add_argument("--image-shape", default="1,28,28", help="C,H,W of the image data")
    parser.add_argument("--block-size", type=int, default=0, help="text windows; 0: the preset's")
    parser.add_argument(
        "--audio-length", type=int, default=0, help="audio segments (samples); 0: the preset's"
    )
    parser.add_argument("--threads", type=int, default=0, help="CPU threads; 0: torch's")
    parser.add_argument("--out", default="", help="default bench/results/gpu_smoke_DEVICE.json")
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}")
    untimed = [m for m in args.models if not timed(m)]
    if untimed:
        parser.error(f"not timed here (see `timed`): {untimed}")
    args.precisions = [p for p in args.precisions.split(",") if p]
    if set(args.precisions) - {"fp32", "bf16"} or args.steps < 1 or args.warmup < 0:
        parser.error("precisions are fp32 and/or bf16; --steps >= 1, --warmup >= 0")
    args.image_shape = tuple(int(v) for v in args.image_shape.split(","))
    args.model_configs = json.loads(args.model_configs.read_text()) if args.model_configs else {}
    return args


def main(argv: list[str] | None = None) -> None:
    from genlab.training.loop import select_device

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    rows = []
    for name in args.models:
        setup = setup_for(name, args)
        for precision, compiled in variants(setup, args):
            try:
                row = run_one(setup, precision, compiled, args, device)
            except (RuntimeError, torch.cuda.OutOfMemoryError) as e:  # one failure, not all
                row = {"model": name, "precision": precision, "compile": compiled}
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
            rows.append(row)
            print(table([row]).splitlines()[1], flush=True)
            gc.collect()
    print()
    print(table(rows))
    out = args.out or f"bench/results/gpu_smoke_{device.type}.json"
    settings = {k: v for k, v in vars(args).items() if k != "model_configs"}
    settings["model_configs"] = args.model_configs or "gpu presets"
    print(f"wrote {write_json(out, {'machine': machine(), 'args': settings, 'results': rows})}")


if __name__ == "__main__":
    main()
