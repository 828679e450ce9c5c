"""Benchmark: MusicVAE's reconstruction accuracy (Roberts et al. 2018, Table 1) on Bach + folk
melodies, the hierarchical 16-bar decoder against the flat one at equal training time, and a
melody language model's NLL per event, all trained on the CPU.

    .venv/bin/python bench/musicvae.py                       # all three parts, about 70 minutes
    .venv/bin/python bench/musicvae.py --minutes-2bar 1 --minutes-16bar 1 --minutes-lm 0.5 \
        --transpose 0 --run /tmp/r --docs /tmp/d --out /tmp/musicvae.json    # a smoke test

Data: `melodies` (the soprano of music21's Bach chorales and its Essen folk songs, Magenta's
melody events, 16 steps per bar), split by piece; training windows transposed by -K..K
semitones (`--transpose`). Every model trains through genlab.api.train_run for about its
minutes of wall time: the step count is planned from a measured training step (so the learning
-rate schedule ends on time) and an evaluation hook stops the run at the budget if the machine
is slower than planned. genlab.api.evaluate then scores the test split.

(1) `musicvae` (2 bars, T = 32, the CPU default sizes): teacher-forced and sampled
    reconstruction accuracy with z = mu(x) (the paper's Table 1 metrics), the test ELBO per
    event, and the music-theory statistics (genlab.notes.melody_statistics) of 256 samples
    (z ~ N(0, I), temperature 1) beside those of the test windows; attribute vectors (Sec.
    5.3): the note density, mean interval and range of 256 greedy decodings of z + a * v for
    a = -2..2 (v from the training windows, as `genlab compose --attribute` uses it).
(2) `musicvae-16bar` (hierarchical, conductor) and `musicvae-16bar-flat` (one LSTM over
    T = 256 steps), the same encoder, sizes `--size16`, batch, learning rate, free bits and
    scheduled sampling, each trained for the same `--minutes-16bar`: the sampled accuracy is
    the paper's central result (the flat decoder learns to ignore z over 256 steps).
(3) `lstm`, a language model of the same 2-bar windows: its test NLL per event beside the
    2-bar MusicVAE's ELBO per event (a bound on its NLL), and its samples' statistics.

Figures and sounds go to `--docs` (piano rolls, WAV from the additive synthesizer at 8 kHz):
2-bar samples, an interpolation between two test melodies, a 16-bar sample, and one test
melody reconstructed by both 16-bar models. Prints a table and writes JSON (`--out`, default
bench/results/musicvae.json).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, median_step_seconds, train_to_budget, write_json

DATA = "melodies"
RATE = 8000  # the WAV files' sample rate
SAMPLES = 256  # samples whose statistics are compared with the test windows'
SHOWN = ("notes_in_key", "repeated_notes", "leaps", "resolved_leaps", "pitch_range")
SHOWN += ("note_density", "empty")


# --- training to a wall-time budget --------------------------------------------------------------
def seconds_per_step(name: str, overrides: dict[str, str]) -> float:
    """The median wall time of a training step of `name` with `overrides` on DATA's windows."""
    from genlab.api import build_model
    from genlab.data import load_dataset
    from genlab.settings import resolve

    settings = resolve(name, overrides=overrides)
    data = load_dataset(DATA, "train", **settings.data_options)
    model = build_model(name, settings.model_config_for(data.spec))
    size = settings.train.batch_size
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    return median_step_seconds(
        model, [data.batch(order[i * size : (i + 1) * size]) for i in range(4)]
    )


def train_for(name: str, minutes: float, overrides: dict[str, str], run: Path) -> dict[str, Any]:
    """Train `name` on DATA for about `minutes` of wall time into `run`; evaluate its test split."""
    from genlab import api

    eval_every = int(overrides.get("train.eval_every", 250))
    step_s = seconds_per_step(name, overrides)
    trained = train_to_budget(
        name, DATA, run, overrides, minutes=minutes, step_s=step_s, eval_every=eval_every
    )
    result = api.evaluate(run, figures=False, batch_size=64)
    return {
        "model": name,
        "train_minutes": round(trained.pop("train_seconds") / 60, 2),
        **trained,
        "overrides": overrides,
        "evaluate": {k: v for k, v in result.items() if isinstance(v, int | float)},
        "run": str(run),
    }


def overrides_of(args, extra: dict[str, Any]) -> dict[str, str]:
    values = {
        "data.transpose": args.transpose,
        "train.log_every": 50,
        "train.eval_every": args.eval_every,
        "train.checkpoint_every": args.eval_every,  # the hook's stop keeps that step's weights
        "train.eval_batches": 8,
        "train.sample_every": 10**9,
        "train.seed": args.seed,
        **extra,
    }
    return {k: str(v) for k, v in values.items()}


# --- what the models make -------------------------------------------------------------------------
def test_windows(bars: int) -> torch.Tensor:
    from genlab.data import load_dataset

    test = load_dataset(DATA, "test", bars=bars)
    return test.batch(torch.arange(len(test)))[1]  # (x, y): y, the events


def statistics(events: torch.Tensor | list) -> dict[str, float]:
    from genlab.notes import melody_statistics

    return {k: round(v, 4) for k, v in melody_statistics(list(events)).items()}


def vae_samples(model, n: int, seed: int) -> torch.Tensor:
    return model.sample(n, generator=torch.Generator().manual_seed(seed), temperature=1.0)


def lm_samples(model, n: int, length: int, seed: int) -> torch.Tensor:
    """n windows of `length` events drawn after START at temperature 1, in one batch."""
    from genlab.generation import GenerationConfig, generate_ids

    prompt = torch.full((n, 1), model.tokenizer.start_id, dtype=torch.long)
    config = GenerationConfig(max_new_tokens=length, temperature=1.0)
    drawn = generate_ids(model, prompt, config, generator=torch.Generator().manual_seed(seed))
    return torch.stack(list(drawn), 1)


def sounds(name: str, events: torch.Tensor, tokenizer, docs: Path, title: str) -> list[str]:
    """events (T,) as a WAV and a piano roll in `docs`."""
    from genlab.notes import pianoroll_figure, render
    from genlab.sound import write_wav

    song = tokenizer.to_sequence(events.tolist())
    wav = write_wav(docs / f"{name}.wav", render(song, RATE), RATE)
    roll = pianoroll_figure([song], docs / f"{name}.png", titles=[title])
    return [str(wav), str(roll)]


# --- the three parts -------------------------------------------------------------------------
def two_bars(args) -> dict[str, Any]:
    from genlab import api
    from genlab.music.compose import interpolate
    from genlab.notes import pianoroll_figure

    extra = {"train.batch_size": args.batch_size}
    row = train_for("musicvae", args.minutes_2bar, overrides_of(args, extra), args.run / "2bar")
    model = api.load(row["run"])
    real = test_windows(2)
    samples = vae_samples(model, SAMPLES, args.seed)
    row["statistics"] = {"samples": statistics(samples), "test": statistics(real)}
    row["elbo_nats_per_event"] = round(-row["evaluate"]["test_elbo"] / 32, 4)
    tokenizer = model.tokenizer
    rolls = [tokenizer.to_sequence(s.tolist()) for s in samples[:4]]
    titles = [f"MusicVAE 2-bar sample {i} (z ~ N(0, I), temperature 1)" for i in range(4)]
    files = [str(pianoroll_figure(rolls, args.docs / "musicvae-2bar-samples.png", titles=titles))]
    pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(args.seed))[:2]
    a, b = (real[i].tolist() for i in pick)
    morph = torch.tensor(interpolate(model, a, b, steps=6))
    files += sounds(
        "musicvae-2bar-interpolation", morph, tokenizer, args.docs,
        "slerp from test melody a (bars 1-2) to test melody b (bars 11-12), 6 windows",
    )  # fmt: skip
    row["attributes"] = attribute_sweep(model, row["run"], args.seed)
    files.append(attribute_figure(model, row["run"], args))
    row["files"] = files
    return row


ATTRIBUTES = ("note_density", "mean_interval", "pitch_range")
AMOUNTS = (-2.0, -1.0, 0.0, 1.0, 2.0)


def attribute_sweep(model, run: str, seed: int) -> dict[str, dict[str, float]]:
    """Sec. 5.3's attribute arithmetic: for each attribute, SAMPLES latents z ~ N(0, I) decoded
    greedily at z + amount * v (v: genlab.music.compose.attribute_shift, from the run's
    training windows); the attribute's mean over the decoded windows at each amount."""
    from genlab.music.compose import attribute_shift

    z = torch.randn(SAMPLES, model.config.z_size, generator=torch.Generator().manual_seed(seed))
    sweep = {}
    for name in ATTRIBUTES:
        vector = attribute_shift(model, run, name, 1.0)
        sweep[name] = {
            f"{amount:+.0f}": round(statistics(model.decode(z + amount * vector))[name], 3)
            for amount in AMOUNTS
        }
    return sweep


def attribute_figure(model, run: str, args) -> str:
    """A test melody's z = mu(x) decoded with -1.5, 0 and +1.5 note-density vectors, as piano
    rolls beside the melody."""
    from genlab.music.compose import attribute_shift
    from genlab.notes import pianoroll_figure

    vector = attribute_shift(model, run, "note_density", 1.0)
    real = test_windows(2)
    melody = real[int(torch.randint(len(real), (1,), generator=torch.Generator().manual_seed(5)))]
    z = model.embed_windows(melody[None])
    amounts = (-1.5, 0.0, 1.5)
    decoded = [melody, *(model.decode(z + a * vector)[0] for a in amounts)]
    songs = [model.tokenizer.to_sequence(events.tolist()) for events in decoded]
    titles = ["a test melody x"]
    titles += [f"mu(x) {a:+.1f} x the note-density vector (greedy decoding)" for a in amounts]
    return str(pianoroll_figure(songs, args.docs / "musicvae-2bar-attribute.png", titles=titles))


def sixteen_bars(args) -> dict[str, Any]:
    from genlab import api

    sizes = {f"{k}_size": args.size16 for k in ("encoder", "decoder", "conductor")}
    extra = {**sizes, "train.batch_size": args.batch_size16}
    extra.update(option.split("=", 1) for option in args.option16)
    rows, models = {}, {}
    for name in ("musicvae-16bar", "musicvae-16bar-flat"):
        overrides = overrides_of(args, extra)
        rows[name] = train_for(name, args.minutes_16bar, overrides, args.run / name)
        models[name] = api.load(rows[name]["run"])
    real = test_windows(16)
    for name, model in models.items():
        rows[name]["statistics"] = {"samples": statistics(vae_samples(model, 64, args.seed))}
    rows["test_statistics"] = statistics(real)
    hierarchical = models["musicvae-16bar"]
    tokenizer = hierarchical.tokenizer
    files = sounds(
        "musicvae-16bar-sample", vae_samples(hierarchical, 1, args.seed + 1)[0], tokenizer,
        args.docs, "hierarchical 16-bar MusicVAE: a sample (z ~ N(0, I), temperature 1)",
    )  # fmt: skip
    melody = real[int(torch.randint(len(real), (1,), generator=torch.Generator().manual_seed(3)))]
    shown, titles = [melody], ["a test melody (16 bars)"]
    for name, model in models.items():
        z = model.embed_windows(melody[None])
        again = model.decode(z)[0]
        right = float((again == melody).float().mean())
        shown.append(again)
        titles.append(f"{name}: greedy decoding of mu(x), {100 * right:.0f}% of events right")
    from genlab.notes import pianoroll_figure

    seqs = [tokenizer.to_sequence(s.tolist()) for s in shown]
    path = args.docs / "musicvae-16bar-reconstructions.png"
    files.append(str(pianoroll_figure(seqs, path, titles=titles)))
    rows["files"] = files
    return rows


def language_model(args) -> dict[str, Any]:
    from genlab import api

    extra = {"train.batch_size": args.batch_size, "data.bars": 2}
    row = train_for("lstm", args.minutes_lm, overrides_of(args, extra), args.run / "lstm")
    model = api.load(row["run"])
    samples = lm_samples(model, SAMPLES, 32, args.seed)
    row["statistics"] = {"samples": statistics(samples)}
    return row


def report(result: dict[str, Any]) -> None:
    two, sixteen, lm = result["two_bars"], result["sixteen_bars"], result["language_model"]
    print("\ntest reconstruction accuracy (z = mu(x)), melodies:")
    rows = [("musicvae (2 bars)", two)] if two else []
    if sixteen:
        rows += [(name, sixteen[name]) for name in ("musicvae-16bar", "musicvae-16bar-flat")]
    for label, row in rows:
        e = row["evaluate"]
        print(
            f"  {label:22s} teacher-forced {e['reconstruction_teacher_forced']:.3f}  sampled "
            f"{e['reconstruction_sampled']:.3f}  ({row['train_minutes']:.1f} min, "
            f"{row['stopped_at_step'] or row['planned_steps']} steps)"
        )
    if two:
        print("attribute vectors: the attribute of greedy decodings of z + amount * v")
        print("  " + " " * 14 + "".join(f"{a:>+8.0f}" for a in AMOUNTS))
        for name, values in two["attributes"].items():
            print(f"  {name:14s}" + "".join(f"{v:8.3f}" for v in values.values()))
    if two and lm:
        print(
            f"nats per event on the test windows: musicvae -ELBO/T {two['elbo_nats_per_event']:.3f}"
            f"  lstm NLL {lm['evaluate']['test_loss']:.3f}"
        )
    columns = []
    if two:
        columns += [("test", two["statistics"]["test"]), ("mvae", two["statistics"]["samples"])]
    if lm:
        columns.append(("lstm", lm["statistics"]["samples"]))
    if sixteen:
        columns.append(("test16", sixteen["test_statistics"]))
        columns += [
            (label, sixteen[name]["statistics"]["samples"])
            for label, name in (("hier16", "musicvae-16bar"), ("flat16", "musicvae-16bar-flat"))
        ]
    if columns:
        print("melody statistics:  " + "".join(f"{label:>9s}" for label, _ in columns))
        for key in SHOWN:
            print(f"  {key:17s} " + "".join(f"{stats[key]:9.3f}" for _, stats in columns))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes-2bar", type=float, default=20.0, help="0: skip part 1")
    parser.add_argument("--minutes-16bar", type=float, default=20.0, help="each; 0: skip")
    parser.add_argument("--minutes-lm", type=float, default=6.0, help="0: skip part 3")
    parser.add_argument("--batch-size", type=int, default=64, help="2-bar windows")
    parser.add_argument("--batch-size16", type=int, default=32, help="16-bar windows")
    parser.add_argument("--size16", type=int, default=128, help="16-bar LSTM units")
    parser.add_argument(
        "--option16", action="append", default=[], metavar="KEY=VALUE",
        help="another setting of both 16-bar models (as genlab train -o), repeatable",
    )  # fmt: skip
    parser.add_argument("--transpose", type=int, default=2, help="training shifts -K..K")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--run", type=Path, default=Path("runs/bench-musicvae"))
    parser.add_argument("--docs", type=Path, default=Path("docs/figures/music"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="bench/results/musicvae.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    result = {
        "benchmark": "musicvae",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "two_bars": two_bars(args) if args.minutes_2bar > 0 else None,
        "sixteen_bars": sixteen_bars(args) if args.minutes_16bar > 0 else None,
        "language_model": language_model(args) if args.minutes_lm > 0 else None,
    }
    result["total_minutes"] = round((time.perf_counter() - start) / 60, 1)
    result["machine"] = {**machine(), "load_average_at_end": os.getloadavg()[0]}
    report(result)
    print(f"wrote {write_json(args.out, result)}")
    return result


if __name__ == "__main__":
    main()
