"""The music family's verb, registered in registry.COMMANDS: `genlab compose`.

The CLI imports this module only when it runs (or its help is shown); the work is in
genlab.music.compose (any music model: a language model or MusicVAE) and genlab.notes (MIDI,
WAV, piano roll, statistics).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from genlab.cli import Device


def compose(
    run: Annotated[Path, typer.Argument(help="a music run: MusicVAE, or an LSTM/GPT on music")],
    out: Annotated[Path, typer.Option(help="the MIDI file to write")] = Path("song.mid"),
    bars: Annotated[int, typer.Option(help="bars to compose (after the primer)")] = 16,
    primer: Annotated[
        Path | None, typer.Option(help="a MIDI file to start from (its top line)")
    ] = None,
    temperature: Annotated[
        float, typer.Option(help="below 1 safer, above 1 wilder; 0 = the most likely events")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    interpolate: Annotated[
        tuple[Path, Path] | None,
        typer.Option(help="two MIDI files: morph from the first to the second (MusicVAE)"),
    ] = None,
    steps: Annotated[int, typer.Option(help="--interpolate: windows from a to b")] = 8,
    attribute: Annotated[
        str | None,
        typer.Option(
            help="MusicVAE: add this melody statistic's attribute vector to every z "
            "(note_density, mean_interval, pitch_range, repeated_notes, ...)"
        ),
    ] = None,
    amount: Annotated[
        float, typer.Option(help="--attribute: times its vector (negative: less of it)")
    ] = 1.0,
    wav: Annotated[Path | None, typer.Option(help="also render the song as WAV")] = None,
    synth: Annotated[
        str, typer.Option(help="WAV renderer: additive, or fluidsynth (a GM soundfont)")
    ] = "additive",
    roll: Annotated[Path | None, typer.Option(help="also draw the piano roll (PNG)")] = None,
    checkpoint: Annotated[str, typer.Option(help="last or best")] = "last",
    device: Device = "cpu",
) -> None:
    """Compose a song with a music model and write it as MIDI (and WAV, a piano roll)."""
    from genlab.api import check_writable, load
    from genlab.cli import _console
    from genlab.errors import GenlabError
    from genlab.music import compose as composing
    from genlab.notes import melody_statistics, pianoroll_figure, render, write_midi
    from genlab.sound import write_wav

    if attribute is not None and interpolate is not None:
        raise GenlabError("--attribute applies to a composed song, not to --interpolate")
    for path in (out, wav, roll):
        if path is not None:
            check_writable(path)
    model = load(run, checkpoint=checkpoint, device=device)
    tokenizer = composing.music_tokenizer(model, run)
    if interpolate is not None:
        a, b = (composing.primer_events(tokenizer, p) for p in interpolate)
        events = composing.interpolate(model, a, b, steps=steps, run=run)
    else:
        start = None if primer is None else composing.primer_events(tokenizer, primer)
        shift = None
        if attribute is not None:
            shift = composing.attribute_shift(model, run, attribute, amount, seed=seed)
        events = composing.compose(
            model, bars=bars, primer=start, temperature=temperature, seed=seed, shift=shift,
            run=run,
        )  # fmt: skip
    song = tokenizer.to_sequence(events)
    console = _console()
    console.print(f"wrote {write_midi(song, out)}")
    if wav is not None:
        rate = 16000
        console.print(f"wrote {write_wav(wav, render(song, rate, synth=synth), rate)}")
    if roll is not None:
        console.print(f"wrote {pianoroll_figure([song], roll, titles=[out.name])}")
    if tokenizer.voices == 1:
        stats = melody_statistics([events])
        shown = {k: None if v != v else round(v, 3) for k, v in stats.items()}  # NaN: undefined
        console.print(json.dumps(shown))
