"""Benchmark: neural style transfer by optimisation (Gatys), fast style transfer and AdaIN.

    .venv/bin/python bench/style_transfer.py                  # ~25 min on 2 busy cores
    .venv/bin/python bench/style_transfer.py --gatys-steps 50 --train-steps 100   # a quick look

The two feed-forward models are trained first through genlab.api.train_run on the `photos`
training images (their CPU defaults; `--train-steps` overrides the steps): fast-style for the
first style (one network per style), AdaIN once for every style. Then each held-out photograph
(`photo_images("test")`, resized to `--size` px on its longer side) is stylised with each style
by each method, and every result is measured the same way (style_losses.transfer_losses, one
common VGG19: relu4_2 content loss against the photograph, Gram style loss over relu1_1 ...
relu5_1 against the style image at the same size) and timed: seconds per image, the Gatys /
feed-forward ratio from the same run. Gatys runs L-BFGS for `--gatys-steps` steps.

Offline the VGG19 is the deterministic random one (genlab.metrics.vgg, `weights_used`), so the
losses compare the methods with each other, not with published numbers.

Prints a table, writes JSON (`--out`) and the content x style figure grid (`--figure`, PNG):
a row per photograph, per style the Gatys, fast-style (its style only) and AdaIN results.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json
from genlab import api
from genlab.data.photos import SPLIT_IMAGES, photo_images
from genlab.data.styles import resize_longer_side, style_image
from genlab.image2image.gatys import Settings, stylize
from genlab.image2image.style_losses import transfer_losses
from genlab.metrics.vgg import loss_network, weights_used


def train(name: str, style: str, steps: int | None, workdir: Path):
    """genlab train NAME --data photos [-o style=STYLE] [--steps N]; the model, its seconds."""
    start = time.perf_counter()
    overrides = {"style": style} if name == "fast-style" else {}
    run, _ = api.train_run(name, "photos", workdir / name, overrides=overrides, steps=steps,
                           progress=False)  # fmt: skip
    return api.load(run), time.perf_counter() - start


def timed(translate, image, **inputs):
    """One image through `translate`, and its seconds."""
    start = time.perf_counter()
    with torch.no_grad():
        out = translate(image[None], **inputs)[0]
    return out, time.perf_counter() - start


def run_methods(contents, styles, models, gatys_steps: int) -> tuple[list[dict], dict]:
    """Every (photograph, style, method): its losses and seconds; and the images by key."""
    vgg = loss_network("vgg19", "cpu")
    rows, images = [], {}
    for c_name, content in contents.items():
        for s_name, style in styles.items():
            results = {}
            settings = Settings(steps=gatys_steps)
            start = time.perf_counter()
            results["gatys"] = (stylize(content, [(style, 1.0)], settings)[0],
                                time.perf_counter() - start)  # fmt: skip
            if s_name == next(iter(styles)):
                results["fast-style"] = timed(models["fast-style"].translate, content)
            results["adain"] = timed(models["adain"].translate, content, style=style[None])
            for method, (image, seconds) in results.items():
                losses = transfer_losses(vgg, image[None], content[None], style[None])
                rows.append({"content": c_name, "style": s_name, "method": method,
                             "seconds": seconds, **losses})  # fmt: skip
                images[c_name, s_name, method] = image
                print(f"  {c_name:10s} {s_name:8s} {method:10s} {seconds:7.2f} s  "
                      f"content {losses['content']:.3f}  style {losses['style']:.4f}", flush=True)  # fmt: skip
    return rows, images


def summary(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Means per method, and the Gatys / method time ratio."""
    out = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        out[method] = {
            k: sum(r[k] for r in mine) / len(mine) for k in ("seconds", "content", "style")
        }
        out[method]["images"] = len(mine)
    for method in out:
        out[method]["gatys_time_ratio"] = out["gatys"]["seconds"] / out[method]["seconds"]
    return out


def figure(images, contents, styles, path: Path) -> Path:
    """Rows: photographs (a first row of the styles); columns: the photograph, then per style
    Gatys, fast-style (the first style only) and AdaIN."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(styles))
    columns = [("content", None)] + [(s, m) for s in styles for m in ("gatys", "fast-style", "adain")
                                     if m != "fast-style" or s == first]  # fmt: skip
    fig, axes = plt.subplots(len(contents) + 1, len(columns),
                             figsize=(2 * len(columns), 2 * (len(contents) + 1)), squeeze=False)  # fmt: skip
    for ax in axes.flat:
        ax.axis("off")
    for j, (s_name, method) in enumerate(columns):
        if method is not None:
            axes[0, j].imshow(styles[s_name].permute(1, 2, 0).numpy())
            axes[0, j].set_title(f"{method}\n({s_name})", fontsize=9)
        for i, c_name in enumerate(contents, start=1):
            image = contents[c_name] if method is None else images[c_name, s_name, method]
            axes[i, j].imshow(image.clamp(0, 1).permute(1, 2, 0).numpy())
    axes[0, 0].set_title("content", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="longer side of every image")
    parser.add_argument("--styles", default="mosaic,swirl", help="built-in styles or files")
    parser.add_argument("--contents", default=",".join(SPLIT_IMAGES["test"][:2]))
    parser.add_argument("--gatys-steps", type=int, default=100, help="L-BFGS steps")
    parser.add_argument("--train-steps", type=int, default=None, help="default: the models'")
    parser.add_argument("--out", default="bench/results/style_transfer.json")
    parser.add_argument("--figure", default="docs/figures/style-transfer/grid.png")
    args = parser.parse_args()

    every = dict(zip(SPLIT_IMAGES["test"], photo_images("test"), strict=True))
    contents = {n: resize_longer_side(every[n], args.size) for n in args.contents.split(",")}
    styles = {s: style_image(s, args.size) for s in args.styles.split(",")}
    with tempfile.TemporaryDirectory() as tmp:
        models, train_seconds = {}, {}
        for name in ("fast-style", "adain"):
            models[name], train_seconds[name] = train(name, next(iter(styles)), args.train_steps,
                                                      Path(tmp))  # fmt: skip
            print(f"trained {name} in {train_seconds[name]:.0f} s", flush=True)
        rows, images = run_methods(contents, styles, models, args.gatys_steps)
    table = summary(rows)
    print(f"\n{'method':12s} {'images':>6s} {'s / image':>10s} {'gatys / it':>11s} "
          f"{'content':>8s} {'style':>8s}")  # fmt: skip
    for method, r in table.items():
        print(f"{method:12s} {r['images']:6d} {r['seconds']:10.3f} {r['gatys_time_ratio']:11.1f} "
              f"{r['content']:8.3f} {r['style']:8.4f}")  # fmt: skip
    picture = figure(images, contents, styles, Path(args.figure))
    payload = {
        "command": " ".join(sys.argv),
        "size": args.size,
        "gatys_steps": args.gatys_steps,
        "train_seconds": train_seconds,
        "vgg19_weights": weights_used("vgg19"),
        "summary": table,
        "rows": rows,
        "figure": str(picture),
        "machine": machine(),
    }
    print(f"wrote {write_json(args.out, payload)} and {picture}")


if __name__ == "__main__":
    main()
