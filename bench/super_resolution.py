"""Benchmark: super-resolution x3 on the held-out photographs (SRCNN, ESPCN, SRResNet, SRGAN).

    .venv/bin/python bench/super_resolution.py                      # all four, ~25 min on 2 cores
    .venv/bin/python bench/super_resolution.py --models espcn --steps espcn=500

Each model trains on the `photos` training images (genlab train's defaults: the CPU settings of
its file) through genlab.api.train_run; SRGAN starts from the SRResNet it trains first (the
paper's initialisation, `--init-from` the SRResNet run) and trains by the adversarial loop. Every model and
the bicubic baseline are then judged on the WHOLE held-out photographs
(`photo_images("test")`, never seen in training) by genlab.metrics.restoration: Y-channel PSNR
and SSIM with a `scale`-pixel border crop, and LPIPS when its pretrained files are found
(offline they are not: LPIPS is then reported as unavailable, never faked). As an offline
stand-in for perceptual quality it also reports `detail`: the mean squared gradient of the
output's Y divided by the reference's (1 = as much local contrast as the original; bicubic and
MSE-trained models blur, < 1; an adversarial model restores texture, towards or above 1). It is
a sharpness ratio, not a perceptual metric: a noisy output scores high too.

Prints a table, writes JSON (`--out`) and the side-by-side crop figure (`--figure`): LR
(nearest-neighbour) | bicubic | ESPCN | SRResNet | SRGAN | HR.
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
from genlab.config import to_dict
from genlab.data.photos import photo_images
from genlab.metrics.restoration import luma, restoration_metrics

MODELS = "srcnn,espcn,srresnet,srgan"
FIGURE_MODELS = ("espcn", "srresnet", "srgan")
# offline the VGG19 is random and its relu5_4 features give ~1/1000 of the pretrained feature
# MSE (measured: 8.5e-7 against a pixel MSE of 1.4e-3 for bicubic x3 patches); 1000 puts the
# content loss back at the size the paper's 1/12.75 scaling aims at
RANDOM_VGG_CONTENT_WEIGHT = 1000.0


def train_model(
    name: str, scale: int, steps: int | None, workdir: Path, extra: dict[str, str] | None = None
) -> tuple:
    """genlab train NAME --data photos -o scale=S [--steps N] [-o K=V ...]; the model and its
    seconds."""
    start = time.perf_counter()
    run, _ = api.train_run(
        name,
        "photos",
        workdir / name,
        overrides={"scale": str(scale), **(extra or {})},
        steps=steps,
        progress=False,
        init_from=workdir / "srresnet" if name == "srgan" else None,
    )
    return api.load(run), time.perf_counter() - start


def srgan_options(content_weight: float) -> dict[str, str]:
    """SRGAN's -o options: the content weight for random VGG features (see the constant)."""
    from genlab.metrics.vgg import load_vgg, weights_used

    load_vgg("vgg19", random_ok=True)  # what the loss network will be
    return {"content_weight": str(content_weight)} if weights_used("vgg19") == "random" else {}


def detail_ratio(model, images: list[torch.Tensor], *, baseline: bool) -> float:
    """Mean over images of E|grad Y(output)|^2 / E|grad Y(reference)|^2, border cropped."""
    ratios = []
    for image in images:
        x = image[None].float()
        degraded = model.degrade(x)
        with torch.no_grad():
            y = model.baseline(degraded) if baseline else model.translate(degraded)
        reference = x[..., : y.shape[-2], : y.shape[-1]]
        b = model.crop_border
        energies = []
        for z in (y, reference):
            z = luma((z.clamp(0, 1) * 255).round() / 255)[..., b:-b, b:-b]
            dy, dx = z.diff(dim=-2), z.diff(dim=-1)
            energies.append(float(dy.square().mean() + dx.square().mean()))
        ratios.append(energies[0] / energies[1])
    return sum(ratios) / len(ratios)


def crop_figure(models: dict, path: Path, scale: int) -> Path:
    """LR | bicubic | models | HR on one 96 x 96 crop of each of two held-out photographs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    crops = [(0, 60, 180), (1, 120, 200)]  # (test image, top, left): astronaut's face, coffee
    columns = ["LR", "bicubic", *[m for m in FIGURE_MODELS if m in models], "HR"]
    figure, axes = plt.subplots(len(crops), len(columns), figsize=(2 * len(columns), 4.3))
    any_model = next(iter(models.values()))
    images = photo_images("test")
    for row, (which, top, left) in enumerate(crops):
        hr = images[which][None, :, top : top + 96, left : left + 96]
        lr = any_model.degrade(hr)
        shown = {"LR": lr.repeat_interleave(scale, -1).repeat_interleave(scale, -2)}
        shown["bicubic"] = any_model.baseline(lr)
        with torch.no_grad():
            shown |= {m: models[m].translate(lr) for m in columns if m in models}
        shown["HR"] = hr
        for col, name in enumerate(columns):
            axis = axes[row][col]
            axis.imshow(shown[name][0].clamp(0, 1).permute(1, 2, 0).numpy())
            axis.set_xticks([]), axis.set_yticks([])
            if row == 0:
                axis.set_title(name, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument("--steps", action="append", default=[], help="NAME=STEPS (repeatable)")
    parser.add_argument("--content-weight", type=float, default=RANDOM_VGG_CONTENT_WEIGHT)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="bench/results/super_resolution.json")
    parser.add_argument("--figure", default="docs/figures/super_resolution_crops.png")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.models.split(",")
    steps = {k: int(v) for k, v in (item.split("=") for item in args.steps)}
    if "srgan" in names and "srresnet" not in names:
        parser.error("srgan starts from the srresnet this script trains: add srresnet")
    images = photo_images("test")
    models, rows, seconds, configs = {}, [], {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            # SRGAN starts from the SRResNet run (--init-from, as the paper does)
            extra = srgan_options(args.content_weight) if name == "srgan" else None
            models[name], seconds[name] = train_model(
                name, args.scale, steps.get(name), Path(tmp), extra
            )
            configs[name] = to_dict(models[name].config)
    for name, model in models.items():
        found = restoration_metrics(model, images)
        rows.append({"model": name, "train_seconds": round(seconds[name], 1), **found})
        rows[-1]["detail"] = detail_ratio(model, images, baseline=False)
    first = next(iter(models.values()))
    baseline = {k[: -len("_baseline")]: v for k, v in rows[0].items() if k.endswith("_baseline")}
    rows.insert(
        0,
        {"model": "bicubic", **baseline, "detail": detail_ratio(first, images, baseline=True)},
    )
    print_table(rows)
    figure = crop_figure(models, Path(args.figure), args.scale)
    payload = {
        "benchmark": "super_resolution",
        "scale": args.scale,
        "test_images": "photo_images('test'): astronaut, coffee, camera (whole photographs)",
        "rows": rows,
        "configs": configs,
        "figure": str(figure),
        "machine": machine(),
    }
    print(f"wrote {write_json(args.out, payload)} and {figure}")
    return payload


def print_table(rows: list[dict]) -> None:
    def number(value, digits):
        return "n/a" if value is None else f"{value:.{digits}f}"

    print(f"{'model':<10}{'PSNR-Y':>9}{'SSIM-Y':>9}{'LPIPS':>8}{'detail':>8}{'train s':>9}")
    for row in rows:
        print(
            f"{row['model']:<10}{number(row['psnr_y'], 2):>9}{number(row['ssim_y'], 4):>9}"
            f"{number(row.get('lpips'), 3):>8}{number(row['detail'], 2):>8}"
            f"{number(row.get('train_seconds'), 0):>9}"
        )
    psnr = {row["model"]: row["psnr_y"] for row in rows}
    for name in psnr:
        if name != "bicubic":
            print(f"{name}: {psnr[name] - psnr['bicubic']:+.2f} dB over bicubic")


if __name__ == "__main__":
    main()
