"""Glow's training step at the `gpu` preset's shapes: what makes it launch- and sync-bound.

    python bench/glow_step.py [--baseline-src DIR] [--device cpu] [--out bench/results/glow_step.json]

A step is what the likelihood loop does: loss (autocast), backward, gradient clipping, AdamW with
foreach kernels (CUDA's default). Measured per step, on the preset's structure (1x28x28 images,
2 levels of 32 steps of flow, 512-channel couplings):

- syncs: `.item()` / `bool()` / `float()` of a tensor in the forward and backward passes, found
  with torch.profiler as aten::_local_scalar_dense. On a GPU each one waits for every queued
  kernel to finish, so the host cannot run ahead of the device. (The optimizer's own `.item()`
  calls read step counters that AdamW keeps on the host: not syncs, not counted.)
- aten ops: dispatcher calls in forward and backward (views included), the host's work per
  step; and "kernels": the leaf ops that compute (views and composite wrappers left out), about
  the CUDA kernels a step launches.
- host ms: the wall time of a step whose arithmetic is made negligible (hidden 8, batch 1; the
  same 64 steps of flow): a floor under a GPU step, since the host must issue every kernel.
  The minimum over `--repeats` steps and `--rounds` runs that alternate between the trees (a
  shared machine's load moves single timings by 2x).
- on CUDA only: steps/s at the real shapes (`--batch`, default the preset's 128).

`--baseline-src DIR` runs the same measurements on another genlab source tree in a second
process and prints both side by side, e.g. for the tree before a change:

    git archive <commit> src | tar -x -C /tmp/before
    python bench/glow_step.py --baseline-src /tmp/before/src

What CPU numbers mean for a GPU: the counts are exact (the same Python issues the same ops on
any device; only the optimizer's foreach kernels are batched differently); the host time is a
lower bound on a launch-bound GPU step, not a GPU time; there is no sync cost on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

VIEWS = {  # metadata-only ops and composite wrappers whose children do the work
    "aten::as_strided", "aten::view", "aten::reshape", "aten::_reshape_alias", "aten::permute",
    "aten::unsqueeze", "aten::squeeze", "aten::expand", "aten::slice", "aten::narrow",
    "aten::select", "aten::t", "aten::transpose", "aten::chunk", "aten::split", "aten::unbind",
    "aten::diagonal", "aten::alias", "aten::detach", "aten::_unsafe_view", "aten::resolve_conj",
    "aten::resolve_neg", "aten::empty", "aten::empty_strided", "aten::empty_like",
    "aten::lift_fresh", "aten::contiguous", "aten::to", "aten::_nnpack_available",
    "aten::resize_", "aten::result_type",
}  # fmt: skip


def build(hidden: int, device: torch.device):
    """Glow with the gpu preset's model_config (hidden overridden) for 1x28x28 images."""
    from genlab.config import from_dict, to_dict
    from genlab.contract import config_for_data
    from genlab.data.base import DataSpec
    from genlab.registry import model_class

    cls = model_class("glow")
    preset = cls.presets["gpu"]["model_config"]
    config = config_for_data(cls.Config(), DataSpec("image", (1, 28, 28), 10))
    config = from_dict(cls.Config, {**to_dict(config), **preset, "hidden": hidden})
    torch.manual_seed(0)
    return cls(config).to(device).train()


def make_step(model, device: torch.device, precision: str, batch: int, compiled: bool):
    from genlab.training.loop import _compiled, _LossModule, autocast_context

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
    loss_fn = _compiled(_LossModule(model), compiled)
    g = torch.Generator().manual_seed(0)
    x = (torch.randint(0, 256, (batch, 1, 28, 28), generator=g).float() / 255).to(device)

    def forward():
        optimizer.zero_grad(set_to_none=True)
        with autocast_context(device, precision):
            return loss_fn(x)["loss"].float()

    def update():
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    def step():
        forward().backward()
        update()

    return forward, update, step


def profile_counts(fn) -> dict[str, int]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = [e for e in prof.events() if e.name.startswith("aten::")]
    leaves = [
        e
        for e in events
        if e.name not in VIEWS and not any(c.name.startswith("aten::") for c in e.cpu_children)
    ]
    syncs = sum(e.name == "aten::_local_scalar_dense" for e in events)
    return {"aten_ops": len(events), "kernels": len(leaves), "syncs": syncs}


def counts(device: torch.device, precision: str) -> dict[str, dict[str, int]]:
    """Per-phase counts of one step after the first (ActNorm's initialisation excluded)."""
    model = build(8, device)
    forward, _, step = make_step(model, device, precision, 1, compiled=False)
    step()
    holder = {}
    out = {"forward": profile_counts(lambda: holder.setdefault("loss", forward()))}
    out["backward"] = profile_counts(lambda: holder["loss"].backward())
    return out


def host_ms(device: torch.device, precision: str, repeats: int, compiled: bool) -> float:
    """Min wall time of a step with negligible arithmetic (hidden 8, batch 1)."""
    model = build(8, device)
    *_, step = make_step(model, device, precision, 1, compiled)
    for _ in range(3):  # initialisation, compilation, allocator warm-up
        step()
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best * 1000


def gpu_steps_per_s(device: torch.device, precision: str, batch: int, steps: int) -> float:
    model = build(512, device)
    *_, step = make_step(model, device, precision, batch, compiled=False)
    for _ in range(5):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps / (time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(args) -> dict:
    import genlab

    device = torch.device(args.device)
    result = {
        "genlab": str(Path(genlab.__file__).parent),
        "precision": args.precision,
        "counts": counts(device, args.precision),
        "host_ms_eager": host_ms(device, args.precision, args.repeats, compiled=False),
    }
    if args.compiled:
        result["host_ms_compiled"] = host_ms(device, args.precision, args.repeats, compiled=True)
    if device.type == "cuda":
        result["steps_per_s"] = gpu_steps_per_s(device, args.precision, args.batch, args.steps)
    return result


def in_subprocess(src: Path, args) -> dict:
    """`measure` run by this script with `src` (a genlab source tree) first on the path."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, __file__, "--json", *forwarded(args)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the run with {src} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def forwarded(args) -> list[str]:
    out = ["--device", args.device, "--precision", args.precision, "--repeats", str(args.repeats)]
    out += ["--batch", str(args.batch), "--steps", str(args.steps), "--threads", str(args.threads)]
    return out + (["--compiled"] if args.compiled else [])


def table(results: dict[str, dict]) -> str:
    names = list(results)
    rows = []
    for phase in ("forward", "backward"):
        for key in ("syncs", "kernels", "aten_ops"):
            rows.append((f"{phase} {key}", [results[n]["counts"][phase][key] for n in names]))
    for key in ("host_ms_eager", "host_ms_compiled", "steps_per_s"):
        if all(key in results[n] for n in names):
            rows.append((key.replace("_", " "), [f"{results[n][key]:.1f}" for n in names]))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'':<{width}}  " + "  ".join(f"{n:>10}" for n in names)]
    lines += [f"{label:<{width}}  " + "  ".join(f"{v:>10}" for v in vals) for label, vals in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--repeats", type=int, default=10, help="timed steps (host time: min)")
    parser.add_argument("--batch", type=int, default=128, help="CUDA steps/s: the batch size")
    parser.add_argument("--steps", type=int, default=50, help="CUDA steps/s: timed steps")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per tree")
    parser.add_argument("--compiled", action="store_true", help="also time a compiled step")
    parser.add_argument("--baseline-src", type=Path, help="another genlab src tree to compare")
    parser.add_argument("--out", default="bench/results/glow_step.json")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # subprocess mode
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.json:
        print(json.dumps(measure(args)))
        return
    trees = {"this tree": Path(__file__).resolve().parents[1] / "src"}
    if args.baseline_src is not None:
        trees = {"baseline": args.baseline_src.resolve(), **trees}
    results: dict[str, dict] = {}
    for _ in range(args.rounds):  # alternate the trees, keep each one's fastest times
        for name, src in trees.items():
            got = in_subprocess(src, args)
            best = results.setdefault(name, got)
            for key in ("host_ms_eager", "host_ms_compiled"):
                if key in got:
                    best[key] = min(best[key], got[key])
            if "steps_per_s" in got:
                best["steps_per_s"] = max(best["steps_per_s"], got["steps_per_s"])
    print(table(results))
    sys.path.insert(0, str(Path(__file__).parent))
    from common import machine, write_json

    path = write_json(
        args.out,
        {
            "machine": machine(),
            "args": vars(args) | {"baseline_src": str(args.baseline_src)},
            "results": results,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
