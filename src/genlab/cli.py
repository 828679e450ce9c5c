"""The `genlab` command. Core verbs: list, train, sample, interpolate, evaluate, fid, serve,
azure-score, tune, info; the families add theirs through registry.COMMANDS (generate,
export, upscale, stylize, compose), imported only when used.

Bad input never shows a traceback: a GenlabError (or a usage error) is one line on stderr and
exit code 2 (3 when training diverged). Set GENLAB_DEBUG=1 to see the traceback of an
unexpected error.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
import typer.core
import typer.main


class _Commands(typer.core.TyperGroup):
    """The core verbs, then the families' own (registry.COMMANDS: "module:function"), each
    imported only when it runs or its help is shown."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from genlab.registry import COMMANDS

        core = super().list_commands(ctx)
        return core + [name for name in COMMANDS if name not in core]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from genlab.registry import COMMANDS, resolve

        if name in self.commands or name not in COMMANDS:
            return super().get_command(ctx, name)
        target, help_text = COMMANDS[name]
        family = typer.Typer(add_completion=False)
        family.command(name=name, short_help=help_text)(resolve(target))
        command = typer.main.get_command(family)
        command.name = name
        return command


app = typer.Typer(
    cls=_Commands,
    name="genlab",
    help="The generative-AI roadmap made runnable: train, sample, evaluate and inspect models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Options = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="key=value: a model option, train.KEY or data.KEY"),
]
# where sample, interpolate, evaluate and generate run the model (train and serve: their own)
Device = Annotated[
    str, typer.Option(help="cpu, cuda, cuda:N, mps or auto (cuda, then mps, then cpu)")
]


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True)


def _print_version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version
    from platform import python_version

    from genlab import __version__

    try:
        torch_version = version("torch")  # from the metadata: no need to import torch
    except PackageNotFoundError:
        torch_version = "not installed"
    print(f"genlab {__version__} (torch {torch_version}, Python {python_version()})")
    raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    # app-wide options; each command's own work is in its function
    pass


@app.command("list")
def list_command() -> None:
    """List the models and datasets, one line each: the name and a one-line description."""
    from genlab.data import list_datasets
    from genlab.registry import list_models

    # Plain lines rather than a table, whose cells wrap: one entry per line stays greppable
    # (`genlab list | grep gan`); a terminal narrower than a line folds it on screen only.
    for title, rows in (("models", list_models()), ("datasets", list_datasets())):
        print(f"{title}:")
        width = max(len(name) for name, _ in rows)
        for name, description in rows:
            print(f"  {name:<{width}}  {' '.join(description.split())}")


@app.command()
def train(
    model: Annotated[str, typer.Argument(help="model name (see `genlab list`)")],
    data: Annotated[str | None, typer.Option("--data", "-d", help="dataset name")] = None,
    env: Annotated[
        str | None,
        typer.Option(help="an environment for an agent (dqn, ppo, ...): --data gym:NAME"),
    ] = None,
    steps: Annotated[
        int | None, typer.Option(help="optimizer steps (train.steps; agents: environment steps)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="run directory (default runs/MODEL-DATA)")
    ] = None,
    option: Options = None,
    config: Annotated[
        Path | None, typer.Option(help="JSON/YAML file with model_config/train/data")
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="a named setting of the model, e.g. gpu (larger nets)")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="continue the run in --out exactly (from step 0 if it has no checkpoint)"
        ),
    ] = False,
    init_from: Annotated[
        str | None,
        typer.Option(
            help="start from a trained model: a run directory or hf:DIR (a Hugging Face GPT-2)"
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="random seed (train.seed)")] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the loss")] = False,
    precision: Annotated[str | None, typer.Option(help="fp32 or bf16")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N or mps")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Train MODEL on --data, writing checkpoints, metrics and sample grids to --out."""
    from genlab.api import train_run
    from genlab.config import parse_overrides

    overrides = parse_overrides(option or [])
    if env is not None:
        if data is not None:
            raise _error("give --data or --env, not both (--env NAME is --data gym:NAME)")
        data = f"gym:{env}"
    for key, value in (
        ("train.compile", "true" if compile else None),
        ("train.precision", precision),
        ("train.device", device),
    ):
        if value is not None:
            overrides[key] = value
    if resume and out is None:
        raise _error("--resume needs --out RUN (the run to continue)")
    out = out or Path("runs") / f"{model}-{(data or 'data').replace(':', '-').replace('/', '-')}"
    path, summary = train_run(
        model,
        data,
        out,
        overrides=overrides,
        config_file=config,
        steps=steps,
        seed=seed,
        resume=resume,
        progress=not quiet and sys.stderr.isatty(),
        preset=preset,
        init_from=init_from,
    )
    from genlab.training.distributed import launched_rank

    if launched_rank() != 0:  # under torchrun: one report, rank 0's (its losses are the means)
        return
    shown = ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items()
    )
    _console().print(f"[green]done[/green]: {path} ({shown})")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sample(
    ctx: typer.Context,
    run: Annotated[Path, typer.Argument(help="run directory")],
    n: Annotated[int, typer.Option("--n", help="number of samples")] = 64,
    out: Annotated[Path, typer.Option(help="output file (a PNG for images)")] = Path("samples.png"),
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    checkpoint: Annotated[str, typer.Option(help="last or best")] = "last",
    device: Device = "cpu",
) -> None:
    """Draw --n samples from a trained run and save them (a picture for images).

    Any other --NAME VALUE is one of the model's sample options (its SampleOptions), e.g.
    --label 3 (conditional models), --truncation 0.7 (StyleGAN), --temperature 0.8 (flows);
    a model that does not take an option says so.
    """
    from genlab.api import sample as sample_run

    path = sample_run(
        run, n, out, seed=seed, checkpoint=checkpoint, device=device, **_flags(ctx.args)
    )
    _console().print(f"wrote {path}")


def _flags(args: list[str]) -> dict[str, str | bool]:
    """`--name value`, `--name=value` and a lone `--flag` (True) -> {"name": value}."""
    flags: dict[str, str | bool] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise _error(f"unexpected argument {arg!r}")
        name, eq, value = arg[2:].partition("=")
        if not eq:
            following = args[i + 1] if i + 1 < len(args) else None
            if following is None or (following.startswith("--") and len(following) > 2):
                value = True
            else:
                value, i = following, i + 1
        flags[name.replace("-", "_")] = value
        i += 1
    return flags


@app.command()
def interpolate(
    run: Annotated[Path, typer.Argument(help="run directory")],
    out: Annotated[Path, typer.Option(help="output animation (.gif)")] = Path("walk.gif"),
    walks: Annotated[int, typer.Option(help="latent walks side by side")] = 8,
    keyframes: Annotated[int, typer.Option(help="random latents each walk visits")] = 4,
    frames: Annotated[int, typer.Option(help="frames between two keyframes")] = 12,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    checkpoint: Annotated[str, typer.Option(help="last or best")] = "last",
    device: Device = "cpu",
) -> None:
    """A looping latent walk (slerp in Z, or lerp in W for StyleGAN) as a GIF."""
    from genlab.api import interpolate as interpolate_run

    path = interpolate_run(
        run,
        out,
        walks=walks,
        keyframes=keyframes,
        frames=frames,
        seed=seed,
        checkpoint=checkpoint,
        device=device,
    )
    _console().print(f"wrote {path}")


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="run directory")],
    split: Annotated[str, typer.Option(help="data split")] = "test",
    seed: Annotated[int, typer.Option(help="seed for binarization and sampling")] = 0,
    checkpoint: Annotated[str, typer.Option(help="last or best")] = "last",
    figures: Annotated[bool, typer.Option(help="also write the model's figures")] = True,
    metrics: Annotated[
        str | None,
        typer.Option(help="sample metrics instead of the NLL, e.g. fid,kid,is,pr,ppl"),
    ] = None,
    n: Annotated[int, typer.Option("--n", help="samples for --metrics")] = 10_000,
    features: Annotated[
        str, typer.Option(help="inception (reference protocol) or digits (offline)")
    ] = "inception",
    weights: Annotated[
        Path | None, typer.Option(help="feature extractor weights file (Inception or digits)")
    ] = None,
    download: Annotated[
        bool, typer.Option("--download", help="allow downloading pretrained metric weights")
    ] = False,
    ppl_space: Annotated[
        str, typer.Option(help="PPL latent space: z (slerp) or w (lerp; StyleGAN)")
    ] = "z",
    protocol: Annotated[
        str | None,
        typer.Option(help="Inception preprocessing: tf (default; torch-fidelity) or pytorch-fid"),
    ] = None,
    device: Device = "cpu",
) -> None:
    """Test metrics (NLL in nats and bits/dim where defined) into RUN/eval.json, and figures.

    With --metrics: FID, KID, Inception Score, precision/recall and PPL from --n samples.
    """
    from genlab.api import evaluate as evaluate_run

    extra = {}
    if metrics is not None:  # without --metrics, evaluate exactly as before
        extra = dict(
            metrics=metrics,
            n=n,
            features=features,
            weights=weights,
            download=download,
            ppl_space=ppl_space,
            protocol=protocol,
        )
    result = evaluate_run(
        run, split=split, seed=seed, checkpoint=checkpoint, figures=figures, device=device, **extra
    )
    _console().print_json(json.dumps(result))


@app.command()
def fid(
    path1: Annotated[Path, typer.Argument(help="folder of images or statistics (.npz)")],
    path2: Annotated[Path, typer.Argument(help="folder of images or statistics (.npz)")],
    features: Annotated[
        str, typer.Option(help="inception (reference protocol) or digits (offline)")
    ] = "inception",
    weights: Annotated[Path | None, typer.Option(help="feature extractor weights file")] = None,
    download: Annotated[
        bool, typer.Option("--download", help="allow downloading pretrained metric weights")
    ] = False,
    batch_size: Annotated[int, typer.Option(help="images per batch")] = 50,
    save_stats: Annotated[
        bool, typer.Option("--save-stats", help="write PATH1's statistics to PATH2 (.npz)")
    ] = False,
    protocol: Annotated[
        str | None,
        typer.Option(help="Inception preprocessing: tf (default; torch-fidelity) or pytorch-fid"),
    ] = None,
    stats_protocol: Annotated[
        str | None,
        typer.Option(help="protocol that made .npz inputs recording none (pytorch-fid's files)"),
    ] = None,
) -> None:
    """FID between two folders of images or saved statistics, like pytorch-fid.

    Statistics files must come from the same --protocol; files without a recorded protocol
    (pytorch-fid's .npz) are refused unless --stats-protocol says which one made them."""
    from genlab.metrics.evaluate import fid_between

    if batch_size < 1:
        raise _error(f"--batch-size must be at least 1, got {batch_size}")
    result = fid_between(
        path1,
        path2,
        features=features,
        weights=weights,
        download=download,
        batch_size=batch_size,
        save_stats=save_stats,
        protocol=protocol,
        stats_protocol=stats_protocol,
    )
    _console().print_json(json.dumps(result))


@app.command()
def serve(
    runs: Annotated[
        list[str] | None,
        typer.Argument(
            help="runs to serve: \\[NAME\\[@VERSION]=]PATH or URL (file://, s3://, gs://, az://, "
            "memory://) or hf:DIR; none: the cloud contract's model folder"
        ),
    ] = None,
    port: Annotated[int | None, typer.Option(help="default 8000; the contract's port")] = None,
    host: Annotated[
        str | None, typer.Option(help="default 127.0.0.1; 0.0.0.0 for cloud contracts")
    ] = None,
    contract: Annotated[
        str | None,
        typer.Option(
            help="generic, sagemaker, vertex or azure (default: $GENLAB_CONTRACT, else found "
            "from the platform's variables when no run is given, else generic)"
        ),
    ] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(help="require 'Authorization: Bearer KEY', KEY read from this variable"),
    ] = None,
    workers: Annotated[int, typer.Option(help="server processes")] = 1,
    flask: Annotated[bool, typer.Option("--flask", help="Flask under gunicorn")] = False,
    max_n: Annotated[int, typer.Option(help="samples per request at most")] = 64,
    max_tokens: Annotated[int, typer.Option(help="new tokens per request at most")] = 1024,
    max_body_bytes: Annotated[
        int, typer.Option(help="request body size limit (an uploaded image's form included)")
    ] = 1 << 20,
    max_pixels: Annotated[
        int, typer.Option(help="pixels per uploaded image at most (image-to-image models)")
    ] = 1 << 22,
    timeout: Annotated[float, typer.Option(help="seconds per request at most")] = 30.0,
    max_batch: Annotated[
        int, typer.Option(help="samples per forward pass (micro-batching; 1 = off)")
    ] = 64,
    max_wait_ms: Annotated[
        float, typer.Option(help="how long a request waits for others to batch with")
    ] = 5.0,
    device: Annotated[
        str, typer.Option(envvar="GENLAB_DEVICE", help="cpu, cuda, cuda:N, mps or auto")
    ] = "cpu",
) -> None:
    """Serve runs over HTTP: a JSON API, server-sent text streams, a web page at /."""
    from genlab.serve.schemas import Limits
    from genlab.serve.server import serve as run_server

    runs = list(runs or [])
    contract = contract or os.environ.get("GENLAB_CONTRACT") or _detect_contract(runs)
    limits = Limits(
        max_n=max_n,
        max_tokens=max_tokens,
        max_body_bytes=max_body_bytes,
        max_pixels=max_pixels,
        timeout_s=timeout,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
    )
    try:
        limits.validate()
    except ValueError as e:
        raise _error(str(e)) from None
    run_server(
        runs,
        contract=contract,
        host=host or ("127.0.0.1" if contract == "generic" else "0.0.0.0"),
        port=port,
        api_key_env=api_key_env,
        workers=workers,
        flask=flask,
        limits=limits,
        device=device,
    )


def _detect_contract(runs: list[str]) -> str:
    """With no run given: the platform whose model-location variable (or folder) is there."""
    if runs:
        return "generic"
    if os.environ.get("AIP_STORAGE_URI"):
        return "vertex"
    if os.environ.get("AZUREML_MODEL_DIR"):
        return "azure"
    if Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")).is_dir():
        return "sagemaker"
    return "generic"


@app.command("azure-score")
def azure_score(
    out: Annotated[Path, typer.Option(help="where to write the script")] = Path("score.py"),
) -> None:
    """Write Azure ML's scoring script (init/run over the runs in AZUREML_MODEL_DIR)."""
    from genlab.serve.contracts import write_score_py

    _console().print(f"wrote {write_score_py(out)}")


@app.command()
def tune(
    model: Annotated[str, typer.Argument(help="model name (see `genlab list`)")],
    data: Annotated[str, typer.Option("--data", "-d", help="dataset name")],
    space: Annotated[Path, typer.Option(help="search-space YAML (docs/tuning.md)")],
    sampler: Annotated[str, typer.Option(help="grid, random or tpe")] = "tpe",
    trials: Annotated[
        int | None, typer.Option(help="trials in the study, all workers together (grid: all)")
    ] = None,
    pruner: Annotated[str, typer.Option(help="none, median, asha or hyperband")] = "none",
    storage: Annotated[
        str | None,
        typer.Option(help="journal:PATH, sqlite:///PATH or postgresql://... (default: memory)"),
    ] = None,
    study: Annotated[str | None, typer.Option(help="study name (default MODEL-DATA)")] = None,
    folds: Annotated[int | None, typer.Option(help="k-fold cross-validation")] = None,
    metric: Annotated[
        str, typer.Option(help="val_loss, val_*, nll_nats, bits_per_dim, fid, ...")
    ] = "val_loss",
    direction: Annotated[
        str | None, typer.Option(help="minimize or maximize (default: from the metric)")
    ] = None,
    steps: Annotated[
        int | None, typer.Option(help="training steps per trial (default: the model's train.steps)")
    ] = None,
    seed: Annotated[int, typer.Option(help="sampler and training seed")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="results folder (default runs/tune-STUDY)")
    ] = None,
    option: Options = None,
    features: Annotated[str, typer.Option(help="fid/kid/is/pr: digits or inception")] = "digits",
    eval_n: Annotated[int, typer.Option(help="fid/kid/is/pr: samples per evaluation")] = 2000,
    protocol: Annotated[
        str | None,
        typer.Option(help="fid/kid/is/pr on inception: tf (default) or pytorch-fid"),
    ] = None,
) -> None:
    """Search MODEL's options on --data: grid, random or TPE, with pruning and workers."""
    settings = dict(locals())  # the flags, passed on as TuneSettings fields by name
    for name in ("model", "data", "space", "option", "out"):
        del settings[name]
    from genlab.config import parse_overrides
    from genlab.tune import tune as run_tune

    run_tune(
        model,
        data,
        space,
        fixed=parse_overrides(option or []),
        out=out,
        console=_console(),
        live=sys.stdout.isatty(),
        **settings,
    )


@app.command()
def info(run: Annotated[Path, typer.Argument(help="run directory")]) -> None:
    """Show a run's model, data, config, progress, checkpoints and last evaluation."""
    from genlab.api import info as run_info

    _console().print_json(json.dumps(run_info(run)))


def _error(message: str):
    from genlab.errors import GenlabError

    return GenlabError(message)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning every user error into one line and exit code 2.

    Usage errors (a missing argument, an unknown flag) are typer's own messages, also exit 2.
    """
    from genlab.errors import GenlabError

    try:
        app(args=argv, prog_name="genlab", standalone_mode=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except GenlabError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if os.environ.get("GENLAB_DEBUG"):
            raise
        print(
            f"internal error: {type(e).__name__}: {e} (set GENLAB_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
