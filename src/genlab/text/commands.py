"""The text family's verbs, registered in registry.COMMANDS: `genlab generate` and `genlab export`.

The CLI imports this module only when one of them runs (or its help is shown); the work is in
genlab.generation (shared with every token generator) and genlab.api.export (any Exporter).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from genlab.cli import Device


def generate(
    run: Annotated[
        Path, typer.Argument(help="language model run directory, or hf:DIR (a GPT-2 folder)")
    ],
    prompt: Annotated[str, typer.Option(help="text to continue")] = "\n",
    max_new_tokens: Annotated[int, typer.Option(help="tokens to generate at most")] = 300,
    temperature: Annotated[float, typer.Option(help="0 = greedy; < 1 sharper, > 1 flatter")] = 0.8,
    top_k: Annotated[int | None, typer.Option(help="sample among the k most likely")] = None,
    top_p: Annotated[float | None, typer.Option(help="nucleus: smallest set with mass p")] = None,
    repetition_penalty: Annotated[
        float, typer.Option(help="> 1 discourages tokens already in the context")
    ] = 1.0,
    stop: Annotated[
        list[str] | None, typer.Option(help="stop before this text (repeatable)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="random seed (default: random)")] = None,
    cache: Annotated[
        bool, typer.Option("--cache/--no-cache", help="KV cache / carried RNN state")
    ] = True,
    checkpoint: Annotated[str, typer.Option(help="last or best")] = "last",
    device: Device = "cpu",
) -> None:
    """Generate text from a language model run, streamed to the terminal as it comes."""
    from genlab.generation import generate_run

    pieces = generate_run(
        run,
        prompt,
        checkpoint=checkpoint,
        use_cache=cache,
        device=device,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
        stop=tuple(stop or ()),
        seed=seed,
    )
    sys.stdout.write(prompt)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


def export(
    run: Annotated[Path, typer.Argument(help="run directory")],
    out: Annotated[Path, typer.Option(help="output folder (new or empty)")],
    format: Annotated[str, typer.Option(help="hf: a Hugging Face folder (GPT -> GPT-2)")] = "hf",
    checkpoint: Annotated[str, typer.Option(help="last or best")] = "last",
) -> None:
    """Export a run's model for another library (GPT: transformers.GPT2LMHeadModel)."""
    from genlab.api import export as export_run
    from genlab.cli import _console

    _console().print(f"wrote {export_run(run, out, format=format, checkpoint=checkpoint)}")
