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
    prompt: Annotated[
        str | None,
        typer.Option(help="text to continue (default: a newline; music: the start token <s>)"),
    ] = None,
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
    out: Annotated[
        Path | None,
        typer.Option(
            help="also write the tokens as a file: music runs write MIDI (default "
            "generated.mid for them)"
        ),
    ] = None,
    device: Device = "cpu",
) -> None:
    """Generate text from a language model run, streamed to the terminal as it comes; a run
    on music events also writes the melody as MIDI (--out)."""
    from genlab.api import check_writable
    from genlab.fileio import atomic_write_text
    from genlab.generation import GenerationConfig, default_prompt, generate_text, language_model
    from genlab.tokenizers import FileTokenizer

    model = language_model(run, checkpoint=checkpoint, device=device)
    tokenizer = model.tokenizer
    prompt = default_prompt(tokenizer) if prompt is None else prompt
    as_file = isinstance(tokenizer, FileTokenizer)
    if as_file and out is None:
        out = Path(f"generated{tokenizer.file_suffix}")
    if out is not None:
        check_writable(out)
    drawn: list[int] = []
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
        stop=tuple(stop or ()),
        seed=seed,
    )
    pieces = generate_text(model, tokenizer, prompt, config, use_cache=cache, on_token=drawn.append)
    sys.stdout.write(prompt)
    text = []
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
        text.append(piece)
    sys.stdout.write("\n")
    if out is None:
        return
    if as_file:
        tokenizer.write_file(tokenizer.encode(prompt) + drawn, out)
    else:
        atomic_write_text(out, prompt + "".join(text))
    sys.stderr.write(f"wrote {out}\n")


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
