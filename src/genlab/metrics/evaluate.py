"""Sample metrics of a model, and FID between folders or statistics files.

`evaluate_samples` draws n samples through the model contract (`model.sample(b, generator=g)`,
one seeded generator, batch by batch), passes each batch through the feature extractors it needs
and keeps only features, so memory never holds more than one batch of images. The real side is
the run's dataset split; its features and statistics are cached per (dataset, options, split,
extractor, weights sha256, protocol) under `cache_dir()/stats/`, so the reference is computed
once.

Feature sets (`features=`):
- "inception": FID, KID and IS on the FID Inception-v3 (the reference protocol), precision/recall
  on VGG16 fc2, PPL with LPIPS-VGG16. Needs the pretrained files (see weights.py).
- "digits": everything on genlab's own digit classifier (trained on first use, offline); PPL
  uses the squared distance of its features on float images. Keys get a `_digits` suffix
  ("FID (digits)"): these numbers are not comparable with published ones.

Inception features follow one of two preprocessing protocols (`protocol=`, see inception.py):
"tf" (the default: TTUR's TensorFlow code, torch-fidelity) or "pytorch-fid" (pytorch-fid 0.3.0).
Their numbers are not comparable, so non-default protocols get their own keys ("fid_pytorch_fid")
and every result and statistics file records the protocol; a statistics file of another
protocol, or of unknown origin, is refused unless the user says which protocol made it.

Every metric's entry records the extractor, its weights' sha256, the protocol and the sample
counts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlab.contract import LatentGenerator
from genlab.errors import GenlabError, close_matches
from genlab.metrics.features import (
    FeatureExtractor,
    dataset_batches,
    extract,
    rechunk,
    sample_batches,
)
from genlab.metrics.fid import (
    RunningStatistics,
    feature_statistics,
    fid_from_features,
    frechet_distance,
    load_statistics,
    save_statistics,
    warn_if_few,
)
from genlab.metrics.weights import cache_dir

FEATURE_SETS = ("inception", "digits")


def parse_metrics(text: str | None) -> tuple[str, ...]:
    """'fid,kid,is' -> ("fid", "kid", "is"); unknown names are a GenlabError."""
    if not text:
        return ()
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in METRICS:
            raise GenlabError(
                f"unknown metric {name!r}; choose among {', '.join(METRICS)}"
                f"{close_matches(name, METRICS)}"
            )
    return tuple(dict.fromkeys(names))


def check_features(features: str) -> str:
    if features not in FEATURE_SETS:
        raise GenlabError(
            f"unknown feature set {features!r}; choose inception or digits"
            f"{close_matches(features, FEATURE_SETS)}"
        )
    return features


@dataclass
class SampleMetricOptions:
    metrics: tuple[str, ...]
    n: int = 10_000
    features: str = "inception"
    batch_size: int = 50  # samples drawn per model.sample call
    # images per feature-network batch, whatever the sampling batch: features, hence the
    # metrics, are then bit-identical for any batch_size (see features.rechunk)
    feature_batch_size: int = 50
    seed: int = 0
    weights: str | Path | None = None  # the main extractor's file (Inception or digits)
    protocol: str | None = None  # Inception preprocessing: "tf" (default) or "pytorch-fid"
    download: bool = False
    use_cache: bool = True  # reference statistics cache
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    ppl_space: str = "z"
    ppl_sampling: str = "full"
    ppl_epsilon: float = 1e-4


# --- extractors -------------------------------------------------------------------------------
def check_protocol(features: str, protocol: str | None) -> str:
    """The protocol name of a feature set: for Inception `protocol` (default "tf"); the digit
    features have one fixed protocol ("digits"), so naming another is an error."""
    from genlab.metrics.inception import DEFAULT_PROTOCOL
    from genlab.metrics.inception import check_protocol as known

    if check_features(features) == "digits":
        if protocol is not None and protocol != "digits":
            raise GenlabError(
                f"--protocol {protocol} chooses the Inception preprocessing; the digit "
                "features have one protocol of their own (drop --protocol or use "
                "--features inception)"
            )
        return "digits"
    return known(protocol or DEFAULT_PROTOCOL)


def main_extractor(
    features: str,
    *,
    weights: str | Path | None = None,
    download: bool = False,
    protocol: str | None = None,
) -> FeatureExtractor:
    """The extractor of FID, KID and IS for a feature set (and Inception protocol)."""
    name = check_protocol(features, protocol)
    if features == "digits":
        from genlab.metrics.digits import load_digits_extractor

        return load_digits_extractor(weights)
    from genlab.metrics.inception import load_inception

    return load_inception(weights, download=download, protocol=name)


def _suffix(features: str, protocol: str | None = None) -> str:
    """The key suffix: none for Inception's default protocol, "_pytorch_fid", "_digits"."""
    if features != "inception":
        return f"_{features}"
    name = check_protocol(features, protocol)
    return "" if name == "tf" else "_" + name.replace("-", "_")


def protocol_of(described: dict[str, Any]) -> str | None:
    """The protocol name in an extractor's `describe()` (None if it records none)."""
    protocol = described.get("protocol")
    if isinstance(protocol, dict):
        if "name" in protocol:
            return str(protocol["name"])
        # genlab files written before protocols had names: one protocol per extractor
        return {"inception-v3-fid": "tf", "digits-cnn": "digits"}.get(
            str(described.get("extractor"))
        )
    return None


def statistics_metadata(extractor: FeatureExtractor) -> dict[str, Any]:
    """What a statistics .npz records about its origin: the protocol, the feature network and
    its weights (checked when the file is read back), and the full description."""
    described = extractor.describe()
    return {
        "protocol": protocol_of(described) or "unknown",
        "feature_network": str(described.get("extractor")),
        "weights_sha256": str(described.get("weights_sha256") or "none"),
        "extractor": json.dumps(described, sort_keys=True, default=str),
    }


# --- the reference side -----------------------------------------------------------------------
def _protocol_digest(described: dict[str, Any]) -> str:
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def reference_cache_path(reference_id: dict[str, Any], extractor: FeatureExtractor) -> Path:
    """cache_dir()/stats/<data>-<split>-<extractor>-<weights sha>-<digest>.npz"""
    described = extractor.describe()
    name = str(reference_id.get("data", "data"))
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:40]
    digest = _protocol_digest({"reference": reference_id, "extractor": described})
    sha = str(described.get("weights_sha256") or "none")[:12]
    return (
        cache_dir()
        / "stats"
        / f"{safe}-{reference_id.get('split', 'all')}-{extractor.name}-{sha}-{digest}.npz"
    )


def reference_features(
    data: Any,
    extractor: FeatureExtractor,
    reference_id: dict[str, Any],
    *,
    batch_size: int,
    use_cache: bool = True,
    device: Any = "cpu",
) -> tuple[Tensor, Path | None]:
    """Features of every example of `data` (cached as .npz with their mu and sigma)."""
    path = reference_cache_path(reference_id, extractor) if use_cache else None
    if path is not None and path.is_file():
        cached = load_statistics(path)
        if "features" in cached:
            return torch.from_numpy(cached["features"]), path
    features = extract(extractor, dataset_batches(data, batch_size), device=device)["features"]
    if path is not None:
        mu, sigma = feature_statistics(features)
        save_statistics(
            path,
            mu,
            sigma,
            features=features.numpy(),
            n=len(features),
            reference=json.dumps(reference_id, sort_keys=True, default=str),
            **statistics_metadata(extractor),
        )
    return features, path


# --- the generated side -----------------------------------------------------------------------
def _generated_outputs(
    model: Any,
    extractors: dict[str, tuple[FeatureExtractor, tuple[str, ...]]],
    *,
    n: int,
    batch_size: int,
    feature_batch_size: int,
    seed: int,
    device: Any,
) -> dict[str, dict[str, Tensor]]:
    """One pass over n samples, drawn batch_size at a time and re-cut to feature_batch_size;
    every extractor sees every batch; only outputs are kept."""
    kept: dict[str, dict[str, list[Tensor]]] = {
        key: {name: [] for name in outputs} for key, (_, outputs) in extractors.items()
    }
    batches: Iterator[Tensor] = rechunk(
        sample_batches(model.sample, n, batch_size, seed=seed, device=device), feature_batch_size
    )
    with torch.inference_mode():
        for images in batches:
            for key, (extractor, outputs) in extractors.items():
                out = extractor(extractor.preprocess(images))
                for name in outputs:
                    kept[key][name].append(out[name].float().cpu())
    return {
        key: {name: torch.cat(parts) for name, parts in by_name.items()}
        for key, by_name in kept.items()
    }


def _ppl(model: Any, features: str, main: FeatureExtractor, options: SampleMetricOptions, device):
    from genlab.metrics.ppl import model_ppl_callables, perceptual_path_length

    callables = model_ppl_callables(model, options.ppl_space)
    if features == "digits":
        distance = main.float_distance  # type: ignore[attr-defined]
        described = {
            "distance": "squared L2 of digit features of float images",
            "features": main.describe(),
        }
    else:
        from genlab.metrics.vgg import load_lpips

        lpips = load_lpips(download=options.download).to(device)
        distance = lpips
        described = lpips.describe()
    with torch.inference_mode():
        result = perceptual_path_length(
            callables["synthesize"],
            callables["sample_latent"],
            distance,
            n=options.n,
            epsilon=options.ppl_epsilon,
            space=options.ppl_space,
            sampling=options.ppl_sampling,
            mapping=callables["mapping"],
            batch_size=options.batch_size,
            seed=options.seed,
        )
    return {**result, "distance": described}


# --- the registry of sample metrics -----------------------------------------------------------
@dataclass
class _Evaluation:
    """What the metrics of one `evaluate_samples` call share: the model, the reference data,
    the loaded extractors ("main": the feature set's FID/KID/IS network; "vgg": VGG16 fc2),
    their outputs on the generated samples, and the reference features (computed once)."""

    model: Any
    reference: Any
    reference_id: dict[str, Any]
    options: SampleMetricOptions
    features: str
    protocol: str
    device: Any
    extractors: dict[str, FeatureExtractor] = field(default_factory=dict)
    generated: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    _real: dict[str, tuple[Tensor, Path | None]] = field(default_factory=dict)

    @property
    def suffix(self) -> str:
        """FID, KID and IS keys: per feature set and Inception protocol."""
        return _suffix(self.features, self.protocol)

    @property
    def plain(self) -> str:
        """Precision/recall (VGG) and PPL keys: per feature set only."""
        return _suffix(self.features)

    def common(self) -> dict[str, Any]:
        options = self.options
        return {
            "n_generated": options.n,
            "seed": options.seed,
            "batch_size": options.batch_size,
            "feature_batch_size": options.feature_batch_size,
        }

    def real(self, key: str) -> tuple[Tensor, Path | None]:
        """The reference features of extractor `key` (and their cache file)."""
        if key not in self._real:
            self._real[key] = reference_features(
                self.reference,
                self.extractors[key],
                self.reference_id,
                batch_size=self.options.feature_batch_size,
                use_cache=self.options.use_cache,
                device=self.device,
            )
        return self._real[key]

    def reference_entry(self, key: str) -> dict[str, Any]:
        """The reference side of a metric's details: its size, origin and cache file."""
        real, cached = self.real(key)
        cache = str(cached) if cached else None
        return {"n_reference": len(real), "reference": {**self.reference_id, "cache": cache}}


Numbers = tuple[dict[str, Any], dict[str, Any]]  # (flat numbers, details by key)


def _fid(e: _Evaluation) -> Numbers:
    real, _ = e.real("main")
    fid = fid_from_features(
        real, e.generated["main"]["features"], names=("reference features", "generated features")
    )
    key = f"fid{e.suffix}"
    entry = {"value": fid["fid"], "protocol": e.protocol, **e.common(), **e.reference_entry("main")}
    entry = {**entry, "features": e.extractors["main"].describe(), "warnings": fid["warnings"]}
    return {key: fid["fid"]}, {key: entry}


def _kid(e: _Evaluation) -> Numbers:
    from genlab.metrics.kid import kernel_distance

    real, _ = e.real("main")
    options = e.options
    kid = kernel_distance(
        real,
        e.generated["main"]["features"],
        subsets=options.kid_subsets,
        subset_size=options.kid_subset_size,
        seed=options.seed,
    )
    key = f"kid{e.suffix}"
    entry = {**kid, "protocol": e.protocol, **e.common(), **e.reference_entry("main")}
    entry["features"] = e.extractors["main"].describe()
    return {f"{key}_mean": kid["kid_mean"], f"{key}_std": kid["kid_std"]}, {key: entry}


def _is(e: _Evaluation) -> Numbers:
    from genlab.metrics.inception_score import inception_score

    score = inception_score(e.generated["main"]["logits"], seed=e.options.seed)
    key = f"is{e.suffix}"
    entry = {**score, "protocol": e.protocol, **e.common()}
    entry["features"] = e.extractors["main"].describe()
    return {f"{key}_mean": score["is_mean"], f"{key}_std": score["is_std"]}, {key: entry}


def _pr_extractor(features: str) -> str:
    """Precision/recall features: VGG16 fc2 (the reference protocol), or the digit features."""
    return "main" if features == "digits" else "vgg"


def _pr(e: _Evaluation) -> Numbers:
    from genlab.metrics.precision_recall import precision_recall

    key = _pr_extractor(e.features)
    real, _ = e.real(key)
    pr = precision_recall(real, e.generated[key]["features"])
    entry = {**pr, **e.common(), **e.reference_entry(key)}
    entry["features"] = e.extractors[key].describe()
    flat = {f"precision{e.plain}": pr["precision"], f"recall{e.plain}": pr["recall"]}
    return flat, {f"pr{e.plain}": entry}


def _path_length(e: _Evaluation) -> Numbers:
    main = e.extractors.get("main")
    result = _ppl(e.model, e.features, main, e.options, e.device)  # type: ignore[arg-type]
    key = f"ppl{e.plain}"
    entry = {**result, "seed": e.options.seed, "batch_size": e.options.batch_size}
    return {key: result["ppl"]}, {key: entry}


@dataclass(frozen=True)
class SampleMetric:
    """A sample metric: the data kinds whose samples it judges (DataSpec.kind), the protocol
    the model must keep (None: any model that samples) and how that is said in an error, the
    extractor outputs it reads from the one pass over the samples for a feature set
    (`uses(features) -> {"main" | "vgg": outputs}`; an empty tuple: the extractor itself, no
    pass), and `compute(evaluation) -> (flat numbers, details)`."""

    kinds: tuple[str, ...]
    uses: Callable[[str], dict[str, tuple[str, ...]]]
    compute: Callable[[_Evaluation], Numbers]
    model: tuple[type, str] | None = None


# name -> metric, in the order their numbers are reported
REGISTRY: dict[str, SampleMetric] = {
    "fid": SampleMetric(("image",), lambda f: {"main": ("features",)}, _fid),
    "kid": SampleMetric(("image",), lambda f: {"main": ("features",)}, _kid),
    "is": SampleMetric(("image",), lambda f: {"main": ("logits",)}, _is),
    "pr": SampleMetric(("image",), lambda f: {_pr_extractor(f): ("features",)}, _pr),
    "ppl": SampleMetric(
        ("image",),
        lambda f: {"main": ()} if f == "digits" else {},  # digits: distances of its features
        _path_length,
        model=(
            LatentGenerator,
            "a latent-space generator (sample_latent(n, generator=...) and generate(z))",
        ),
    ),
}
METRICS = tuple(REGISTRY)


def _check_fit(names: tuple[str, ...], model: Any, spec: Any) -> None:
    """Each metric's data kinds and model protocol, checked before anything is loaded."""
    for name in names:
        metric = REGISTRY[name]
        if spec is not None and spec.kind not in metric.kinds:
            raise GenlabError(
                f"{name} judges {' or '.join(metric.kinds)} samples; this data is {spec.kind}"
            )
        if metric.model is not None and not isinstance(model, metric.model[0]):
            raise GenlabError(f"{name} needs {metric.model[1]}; {type(model).__name__} is not one")


def _load_extractors(e: _Evaluation, uses: dict[str, tuple[str, ...]]) -> None:
    options = e.options
    if "main" in uses:
        main = main_extractor(
            e.features, weights=options.weights, download=options.download, protocol=e.protocol
        )
        e.extractors["main"] = main.to(e.device)  # type: ignore[attr-defined]
    if "vgg" in uses:
        from genlab.metrics.vgg import load_vgg_features

        e.extractors["vgg"] = load_vgg_features(download=options.download).to(e.device)


def _uses(names: tuple[str, ...], features: str) -> dict[str, tuple[str, ...]]:
    """extractor -> the outputs the metrics `names` read (in order, each once)."""
    merged: dict[str, dict[str, None]] = {}
    for name in names:
        for key, outputs in REGISTRY[name].uses(features).items():
            merged.setdefault(key, {}).update(dict.fromkeys(outputs))
    return {key: tuple(outputs) for key, outputs in merged.items()}


def _checked_features(options: SampleMetricOptions, reference: Any) -> str:
    features = check_features(options.features)
    if options.n < 2:
        raise GenlabError(f"--n must be at least 2 for sample metrics, got {options.n}")
    spec = getattr(reference, "spec", None)
    if features == "digits" and spec is not None and tuple(spec.shape)[:1] != (1,):
        raise GenlabError(
            f"digit features judge grey digit images; this data has shape {tuple(spec.shape)} "
            "(use --features inception)"
        )
    return features


def evaluate_samples(
    model: Any,
    reference: Any,
    reference_id: dict[str, Any],
    options: SampleMetricOptions,
) -> dict[str, Any]:
    """The requested sample metrics of `model` against the dataset `reference`.

    Returns flat numbers (e.g. "fid", "kid_mean" or "fid_digits") and, under "sample_metrics",
    one entry per metric with the extractor, weights sha256, protocol and sample counts. Every
    metric of REGISTRY says what it needs; the extractors they share are loaded once and the
    samples drawn once for all of them.
    """
    features = _checked_features(options, reference)
    protocol = check_protocol(features, options.protocol)
    names = tuple(name for name in REGISTRY if name in options.metrics)
    _check_fit(names, model, getattr(reference, "spec", None))
    device = next(model.parameters()).device if isinstance(model, torch.nn.Module) else "cpu"
    e = _Evaluation(model, reference, reference_id, options, features, protocol, device)
    uses = _uses(names, features)
    _load_extractors(e, uses)
    passes = {key: (e.extractors[key], outputs) for key, outputs in uses.items() if outputs}
    if passes:
        e.generated = _generated_outputs(
            model,
            passes,
            n=options.n,
            batch_size=options.batch_size,
            feature_batch_size=options.feature_batch_size,
            seed=options.seed,
            device=device,
        )
    flat: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for name in names:
        numbers, described = REGISTRY[name].compute(e)
        flat.update(numbers)
        details.update(described)
    return {**flat, "sample_metrics": details}


# --- FID between two folders or statistics files (`genlab fid`) -------------------------------
def folder_batches(folder: Path, batch_size: int) -> Iterator[Tensor]:
    """Every image under `folder` as float RGB in [0, 1]; consecutive same-size images batched."""
    from PIL import Image, UnidentifiedImageError

    from genlab.data.folder import image_files

    files = image_files(folder)
    if not files:
        raise GenlabError(f"no images (png, jpg, jpeg, bmp, gif, webp) under {folder}")
    pending: list[Tensor] = []
    for file in files:
        try:
            with Image.open(file) as opened:
                array = np.asarray(opened.convert("RGB"), dtype=np.uint8)
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise GenlabError(f"cannot read image {file}: {e}") from None
        image = torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255  # (3, H, W)
        if pending and (pending[0].shape != image.shape or len(pending) == batch_size):
            yield torch.stack(pending)
            pending = []
        pending.append(image)
    if pending:
        yield torch.stack(pending)


def statistics_protocol(
    path: Path,
    saved: dict[str, Any],
    extractor: FeatureExtractor,
    protocol: str,
    stated: str | None = None,
) -> str:
    """The protocol that made a statistics file, checked against this comparison's.

    A file records its protocol and feature network (genlab's) or nothing (pytorch-fid's and
    TTUR's: mu and sigma only); `stated` is the user's word for the latter (--stats-protocol).
    Another feature network, another protocol, or an unknown one not stated: GenlabError.
    """
    described = extractor.describe()
    theirs = json.loads(str(saved["extractor"])) if "extractor" in saved else {}
    network = str(saved.get("feature_network", theirs.get("extractor") or "")) or None
    sha = str(saved.get("weights_sha256", theirs.get("weights_sha256") or "none"))
    mine = str(described.get("weights_sha256") or "none")
    if network is not None and (network != described.get("extractor") or sha != mine):
        raise GenlabError(
            f"{path} holds statistics of {network} (weights sha256 {sha[:12]}...), not of "
            f"{described.get('extractor')} ({mine[:12]}...)"
        )
    recorded = str(saved["protocol"]) if "protocol" in saved else protocol_of(theirs)
    if recorded in (None, "unknown"):
        if stated is None:
            raise GenlabError(
                f"{path} does not record which protocol made it (a pytorch-fid or TTUR .npz "
                "holds only mu and sigma); if you know, say so with --stats-protocol "
                "pytorch-fid (or tf)"
            )
        recorded = stated
    elif stated is not None and stated != recorded:
        raise GenlabError(f"{path} records protocol {recorded}, not --stats-protocol {stated}")
    if recorded != protocol:
        raise GenlabError(
            f"{path} holds statistics of the {recorded} protocol but this FID uses {protocol}; "
            f"numbers of different protocols are not comparable (use --protocol {recorded})"
        )
    return recorded


def path_statistics(
    path: str | Path,
    extractor: FeatureExtractor,
    *,
    batch_size: int = 50,
    device: Any = "cpu",
    stats_protocol: str | None = None,
) -> dict[str, Any]:
    """mu, sigma, n and protocol of a folder of images or a saved .npz."""
    path = Path(path)
    protocol = protocol_of(extractor.describe()) or "unknown"
    if path.is_file() and path.suffix == ".npz":
        saved = load_statistics(path)
        statistics_protocol(path, saved, extractor, protocol, stats_protocol)
        n = int(saved["n"]) if "n" in saved else None
        return {
            "mu": saved["mu"],
            "sigma": saved["sigma"],
            "n": n,
            "source": "statistics",
            "protocol": protocol,
        }
    if not path.is_dir():
        raise GenlabError(f"{path} is neither a folder of images nor an .npz statistics file")
    stats = RunningStatistics()
    extract(
        extractor,
        folder_batches(path, batch_size),
        device=device,
        on_batch=lambda out: stats.update(out["features"]),
    )
    warn_if_few(stats.n, extractor.dim, f"features of {path}")
    return {
        "mu": stats.mean(),
        "sigma": stats.covariance(),
        "n": stats.n,
        "source": "images",
        "protocol": protocol,
    }


def fid_between(
    path1: str | Path,
    path2: str | Path,
    *,
    features: str = "inception",
    weights: str | Path | None = None,
    download: bool = False,
    batch_size: int = 50,
    save_stats: bool = False,
    protocol: str | None = None,
    stats_protocol: str | None = None,
) -> dict[str, Any]:
    """FID between two folders / .npz files; with save_stats, write PATH1's statistics to PATH2.

    `protocol`: the Inception preprocessing ("tf" by default, or "pytorch-fid");
    `stats_protocol`: the protocol that made .npz inputs which do not record one.
    """
    from genlab.metrics.inception import check_protocol as known_protocol

    name = check_protocol(features, protocol)
    if stats_protocol is not None:
        known_protocol(stats_protocol)
    extractor = main_extractor(features, weights=weights, download=download, protocol=name)
    described = extractor.describe()
    options = {"batch_size": batch_size, "stats_protocol": stats_protocol}
    first = path_statistics(path1, extractor, **options)
    if save_stats:
        out = Path(path2)
        if out.suffix != ".npz":
            raise GenlabError(f"--save-stats writes an .npz file, got {out}")
        save_statistics(
            out,
            first["mu"],
            first["sigma"],
            n=first["n"] if first["n"] is not None else -1,
            **statistics_metadata(extractor),
        )
        return {"saved": str(out), "n": first["n"], "protocol": name, "features": described}
    second = path_statistics(path2, extractor, **options)
    value = frechet_distance(first["mu"], first["sigma"], second["mu"], second["sigma"])
    return {
        f"fid{_suffix(features, name)}": value,
        "protocol": name,
        "n1": first["n"],
        "n2": second["n"],
        "features": described,
    }
