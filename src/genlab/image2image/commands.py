"""The image-to-image family's verbs, registered in registry.COMMANDS: `genlab stylize` (style
transfer) and `genlab upscale` (super-resolution).

The CLI imports this module only when one of them runs (or its help is shown); the work is in
genlab.api.translate (any contract.Translator: read the image, translate, write a PNG).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from genlab.cli import Device


def upscale(
    image: Annotated[Path, typer.Argument(help="the low-resolution image (png, jpg, bmp, ...)")],
    model: Annotated[
        Path, typer.Option("--model", help="a super-resolution run (srcnn, espcn, srresnet, srgan)")
    ],
    out: Annotated[Path, typer.Option(help="where to write the upscaled PNG")],
    tile: Annotated[
        int | None,
        typer.Option(help="largest input tile upscaled at once (memory only; default 256)"),
    ] = None,
    checkpoint: Annotated[str, typer.Option(help="last or best")] = "last",
    device: Device = "cpu",
) -> None:
    """Upscale an image by a super-resolution run's scale (tiled, so any size fits in memory)."""
    from genlab.api import translate
    from genlab.cli import _console

    path = translate(model, image, out, checkpoint=checkpoint, device=device, tile=tile)
    _console().print(f"wrote {path}")


def stylize(
    content: Annotated[Path, typer.Argument(help="the content image (png, jpg, bmp, ...)")],
    out: Annotated[Path, typer.Option(help="where to write the stylised PNG")],
    style: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME_OR_PATH[:WEIGHT], repeatable: a built-in style (brick, grass, gravel, "
            "hubble_deep_field, mosaic, waves, swirl) or an image file; several are blended"
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="a fast-style or AdaIN run: one forward pass, no --steps"),
    ] = None,
    alpha: Annotated[
        float | None, typer.Option(help="--model AdaIN: content-style trade-off in [0, 1]")
    ] = None,
    size: Annotated[
        int | None, typer.Option(help="longer side of the result, px (optimisation: 256)")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="optimizer steps (300)")] = None,
    optimizer: Annotated[str | None, typer.Option(help="lbfgs (default) or adam")] = None,
    init: Annotated[str | None, typer.Option(help="start from the content (default) or noise")] = (
        None
    ),
    preserve_color: Annotated[
        bool, typer.Option("--preserve-color", help="transfer luminance only, keep the colours")
    ] = False,
    content_weight: Annotated[float | None, typer.Option(help="alpha of the loss (1)")] = None,
    style_weight: Annotated[float | None, typer.Option(help="beta of the loss (300)")] = None,
    tv_weight: Annotated[float | None, typer.Option(help="total variation weight (10)")] = None,
    lr: Annotated[float | None, typer.Option(help="learning rate (L-BFGS 1, Adam 0.02)")] = None,
    gif: Annotated[Path | None, typer.Option(help="also write the optimisation as a GIF")] = None,
    seed: Annotated[int, typer.Option(help="seed of --init noise")] = 0,
    checkpoint: Annotated[str, typer.Option(help="--model: last or best")] = "last",
    device: Device = "cpu",
) -> None:
    """Neural style transfer: optimise the image (Gatys et al. 2016, with a progress bar), or,
    with --model, one forward pass of a fast-style or AdaIN run (genlab.api.translate)."""
    from genlab.cli import _console
    from genlab.errors import GenlabError

    styles = [_style_and_weight(text) for text in style or []]
    tuned = {
        "steps": steps, "optimizer": optimizer, "init": init, "content_weight": content_weight,
        "style_weight": style_weight, "tv_weight": tv_weight, "lr": lr,
    }  # fmt: skip
    if model is not None:
        others = {"size": size, "gif": gif, "preserve_color": preserve_color or None}
        given = [name for name, value in {**tuned, **others}.items() if value is not None]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise GenlabError(f"{flag} is for the optimisation; leave it out with --model")
        written = _stylize_with_run(model, content, out, styles, alpha, checkpoint, device)
        _console().print(f"wrote {written}")
        return
    if not styles:
        raise GenlabError("give at least one --style (a built-in name or an image file)")
    if alpha is not None:
        raise GenlabError("--alpha is for an AdaIN run (--model)")
    from genlab.image2image.gatys import Settings

    settings = Settings(
        preserve_color=preserve_color,
        seed=seed,
        **{name: value for name, value in tuned.items() if value is not None},
    )
    if gif is not None:
        settings.frame_every = max(1, settings.steps // 40)
    _stylize_by_optimisation(content, styles, out, settings, size or 256, gif, device)


def _style_and_weight(text: str) -> tuple[str, float]:
    """ "NAME_OR_PATH[:WEIGHT]" -> (name or path, weight); the text after the last colon is a
    weight only when it reads as a number (so C:\\x.png and a:b.png stay paths)."""
    from genlab.errors import GenlabError

    name, colon, weight = text.rpartition(":")
    if colon:
        try:
            value = float(weight)
        except ValueError:
            return text, 1.0
        if not value >= 0 or value == float("inf"):
            raise GenlabError(f"--style {text}: the weight must be a number >= 0")
        return name, value
    return text, 1.0


def _check_output(out: Path) -> None:
    from genlab.errors import GenlabError

    if out.is_dir():
        raise GenlabError(f"output path {out} is a folder; give a file name such as out.png")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise GenlabError(f"cannot write {out}: no folder {out.parent}")


def _stylize_by_optimisation(content, styles, out, settings, size, gif, device) -> None:
    """Gatys et al.: read and resize the images, optimise with a progress bar, write the
    result (and the GIF of its frames)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from genlab.cli import _console
    from genlab.data.photos import read_image
    from genlab.data.styles import resize_longer_side, style_image
    from genlab.errors import GenlabError
    from genlab.image2image.gatys import stylize as optimise
    from genlab.imaging import save_gif, save_image
    from genlab.training.loop import select_device

    if size < 16:
        raise GenlabError(f"--size must be at least 16 px, got {size}")
    settings.validate()
    for path in (out, gif):
        if path is not None:
            _check_output(path)
    settings.device = str(select_device(device))
    image = resize_longer_side(read_image(content, channels=3), size)
    blend = [(style_image(name, size), weight) for name, weight in styles]
    columns = (TextColumn("stylize"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("loss {task.fields[loss]:.4g}"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=_console(stderr=True)) as bar:
        task = bar.add_task("stylize", total=settings.steps, loss=float("nan"))
        result, history = optimise(
            image, blend, settings,
            progress=lambda step, losses: bar.update(task, completed=step, loss=losses["loss"]),
        )  # fmt: skip
    _console().print(f"wrote {save_image(result, out)}")
    if gif is not None:
        _console().print(f"wrote {save_gif([image, *history.frames, result], gif, scale=1)}")


def _stylize_with_run(model, content, out, styles, alpha, checkpoint, device) -> Path:
    """A fast-style or AdaIN run: one style through genlab.api.translate (a built-in style is
    written to a temporary PNG first); several styles (AdaIN's interpolation) through the
    model's translate with their weights."""
    import tempfile

    from genlab.api import translate
    from genlab.data.styles import STYLES, style_image
    from genlab.imaging import save_image

    options = {} if alpha is None else {"alpha": alpha}
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, (name, _) in enumerate(styles):
            builtin = name in STYLES
            paths.append(
                save_image(style_image(name), Path(folder) / f"{i}.png") if builtin else name
            )
        if len(styles) <= 1:
            inputs = {"style": paths[0]} if paths else {}
            return translate(model, content, out, inputs=inputs, checkpoint=checkpoint,
                             device=device, **options)  # fmt: skip
        return _interpolate_styles(model, content, out, paths, [w for _, w in styles], options,
                                   checkpoint, device)  # fmt: skip


def _interpolate_styles(model, content, out, paths, weights, options, checkpoint, device) -> Path:
    """AdaIN's style interpolation (eq. 15): translate(image, style=[...], weights=[...])."""
    import torch

    from genlab.api import load
    from genlab.contract import Translator, translate_keywords
    from genlab.data.photos import read_image
    from genlab.errors import GenlabError
    from genlab.imaging import save_image

    _check_output(out)
    run = load(model, checkpoint=checkpoint, device=device)
    if not isinstance(run, Translator) or "style" not in run.translate_inputs:
        raise GenlabError(
            f"{model}: a {type(run).__name__} run takes no style image, let alone several"
        )
    try:
        keywords = translate_keywords(run, options)
    except ValueError as e:
        raise GenlabError(f"--{e}") from None
    where = next(run.parameters()).device
    x = read_image(content, channels=3)[None].to(where)
    styles = [read_image(path, channels=3)[None].to(where) for path in paths]
    with torch.no_grad():
        y = run.translate(x, style=styles, weights=weights, **keywords)
    return save_image(y[0].float().cpu(), out)
