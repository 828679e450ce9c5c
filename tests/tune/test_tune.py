"""Tuning: search spaces, grid/random/TPE, pruning, cross-validation, workers on a journal."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from genlab.errors import GenlabError

optuna = pytest.importorskip("optuna")

from genlab.training.loop import TrainConfig  # noqa: E402
from genlab.tune import tune  # noqa: E402
from genlab.tune.space import parse_space  # noqa: E402
from genlab.vae import VAE  # noqa: E402

# a VAE small enough that a trial takes a fraction of a second on digits (8 x 8)
CHEAP = {"arch": "mlp", "hidden": "16", "train.batch_size": "32", "train.eval_every": "5"}


def space(data: dict):
    return parse_space(data, model_config=VAE.Config(), train_config=TrainConfig())


def write_space(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


BAD_SPACES = [
    ({"latnt_dim": {"type": "int", "low": 2, "high": 8}}, "unknown option 'latnt_dim'"),
    ({"train.lrr": {"type": "float", "low": 0.1, "high": 1}}, "unknown option 'train.lrr'"),
    ({"latent_dim": {"type": "int", "low": "two", "high": 8}}, "low must be a number"),
    ({"latent_dim": {"type": "integer", "low": 2, "high": 8}}, "type must be one of"),
    ({"latent_dim": {"type": "categorical", "choices": []}}, "choices must be a non-empty list"),
    ({"latent_dim": {"type": "int", "low": 8, "high": 2}}, "low (8) is greater than high (2)"),
    ({"train.lr": {"type": "float", "low": 0, "high": 1, "log": True}}, "log scale needs low > 0"),
    ({"latent_dim": {"type": "int", "low": 2, "high": 8, "stp": 2}}, "unknown field 'stp'"),
    ({"latent_dim": {"type": "int", "low": 2.5, "high": 8}}, "whole number"),
    ({"latent_dim": {"type": "categorical", "choices": ["big"]}}, "bad value 'big'"),
    ({"likelihood": {"type": "categorical", "choices": ["gaussian", "cauchy"]}}, "likelihood"),
    ({"latent_dim": 4}, "expected a mapping"),
    (
        {"latent_dim": {"type": "int", "low": 2, "high": 8, "when": {"arch": "mlp"}}},
        "not an entry above",
    ),
    ([], "non-empty mapping"),
]


@pytest.mark.parametrize("data, message", BAD_SPACES)
def test_bad_search_spaces_are_clear_errors(data, message):
    with pytest.raises(GenlabError, match=None) as e:
        space(data)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_conditional_entries_are_drawn_only_when_their_condition_holds():
    s = space(
        {
            "prior": {"type": "categorical", "choices": ["normal", "vamp"]},
            "pseudo_inputs": {"type": "int", "low": 5, "high": 50, "when": {"prior": "vamp"}},
            "train.lr": {"type": "float", "low": "1e-4", "high": 1e-2, "log": True},
        }
    )
    plain = s.suggest(optuna.trial.FixedTrial({"prior": "normal", "train.lr": 1e-3}))
    assert plain == {"prior": "normal", "train.lr": 1e-3}
    mixed = s.suggest(
        optuna.trial.FixedTrial({"prior": "vamp", "pseudo_inputs": 20, "train.lr": 1e-3})
    )
    assert mixed["pseudo_inputs"] == 20
    with pytest.raises(GenlabError, match="conditional"):
        s.grid()
    with pytest.raises(GenlabError, match="not one of its choices"):
        space(
            {
                "prior": {"type": "categorical", "choices": ["normal"]},
                "pseudo_inputs": {"type": "int", "low": 5, "high": 9, "when": {"prior": "x"}},
            }
        )


def test_grid_search_covers_exactly_the_grid(tmp_path):
    grid = {
        "latent_dim": {"type": "categorical", "choices": [2, 3]},
        "train.lr": {"type": "float", "low": 1e-3, "high": 3e-3, "step": 1e-3},
    }
    study, written = tune(
        "vae", "digits", write_space(tmp_path, grid), sampler="grid", steps=5,
        fixed=CHEAP, out=tmp_path / "out",
    )  # fmt: skip
    seen = [(t.params["latent_dim"], round(t.params["train.lr"], 6)) for t in study.trials]
    expected = set(itertools.product([2, 3], [0.001, 0.002, 0.003]))
    assert len(seen) == 6 and set(seen) == expected
    best = yaml.safe_load(written["best"].read_text())
    assert best["model_config"]["arch"] == "mlp" and best["train"]["batch_size"] == 32
    assert best["model_config"]["latent_dim"] == study.best_trial.params["latent_dim"]
    for name in ("history", "importances", "curves", "csv", "json"):
        assert written[name].is_file() and written[name].stat().st_size > 0
    # the best config trains with `genlab train --config`
    from genlab.cli import main

    code = main(["train", "vae", "--data", "digits", "--config", str(written["best"]),
                 "--steps", "2", "--out", str(tmp_path / "again"), "-q"])  # fmt: skip
    assert code == 0
    config = json.loads((tmp_path / "again" / "config.json").read_text())
    assert config["model_config"]["latent_dim"] == best["model_config"]["latent_dim"]


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_random_and_tpe_are_reproducible_with_a_seed(tmp_path, sampler):
    data = {
        "latent_dim": {"type": "int", "low": 2, "high": 6},
        "train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    }
    path = write_space(tmp_path, data)

    def params(seed: int, name: str) -> list[dict]:
        study, _ = tune("vae", "digits", path, sampler=sampler, trials=4, steps=3, seed=seed,
                        fixed=CHEAP, out=tmp_path / name)  # fmt: skip
        return [t.params for t in study.trials]

    first = params(0, "a")
    assert params(0, "b") == first
    assert params(1, "c") != first


@pytest.mark.parametrize("pruner", ["median", "asha", "hyperband"])
def test_pruning_stops_bad_trials_early(tmp_path, pruner):
    """Learning rates from 1e-7 to 1e-2: the small ones cannot learn in 45 steps, and each
    pruner stops them at an early evaluation, so they train fewer steps."""
    data = {"train.lr": {"type": "float", "low": 1e-7, "high": 1e-2, "log": True}}
    study, _ = tune(
        "vae", "digits", write_space(tmp_path, data), sampler="random", trials=12, steps=45,
        pruner=pruner, seed=3, fixed=CHEAP, out=tmp_path / "out",
    )  # fmt: skip
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(pruned) >= 3 and complete
    best_lr = study.best_trial.params["train.lr"]
    assert all(t.params["train.lr"] < best_lr for t in pruned)
    for t in pruned:
        rows = (Path(t.user_attrs["run"]) / "metrics.csv").read_text().splitlines()
        assert max(int(r.split(",")[0]) for r in rows[1:]) < 45  # stopped early
    assert all(max(t.intermediate_values) == 45 for t in complete)


def test_cross_validation_reports_the_mean_and_spread_of_the_folds(tmp_path):
    data = {"latent_dim": {"type": "categorical", "choices": [2]}}
    study, _ = tune("vae", "digits", write_space(tmp_path, data), sampler="grid", steps=3,
                    folds=3, fixed=CHEAP, out=tmp_path / "out")  # fmt: skip
    trial = study.trials[0]
    values = trial.user_attrs["fold_values"]
    assert len(values) == 3 and len(set(values)) == 3  # three different held-out folds
    assert trial.value == pytest.approx(sum(values) / 3)
    assert trial.user_attrs["fold_std"] > 0
    folds = sorted(p.name for p in Path(trial.user_attrs["run"]).iterdir())
    assert folds == ["fold-0", "fold-1", "fold-2"]
    config = json.loads((Path(trial.user_attrs["run"]) / "fold-1" / "config.json").read_text())
    assert config["fold"] == [3, 1]
    with pytest.raises(GenlabError, match="with --folds the metric"):
        tune("vae", "digits", write_space(tmp_path, data), folds=3, metric="fid",
             out=tmp_path / "x")  # fmt: skip


def test_two_workers_share_a_journal_without_duplicate_trials(tmp_path):
    data = {
        "latent_dim": {"type": "int", "low": 2, "high": 6},
        "train.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    }
    path = write_space(tmp_path, data)
    journal = tmp_path / "study.journal"
    genlab = Path(sys.executable).with_name("genlab")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers, logs = [], []
    for i in range(2):
        log = open(tmp_path / f"worker-{i}.log", "w")  # noqa: SIM115 (closed below)
        logs.append(log)
        args = [str(genlab), "tune", "vae", "--data", "digits", "--space", str(path),
                "--sampler", "random", "--seed", str(i), "--trials", "10", "--steps", "25",
                "--storage", f"journal:{journal}", "--study", "shared",
                "--out", str(tmp_path / f"out-{i}")]  # fmt: skip
        for key, value in CHEAP.items():
            args += ["-o", f"{key}={value}"]
        workers.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env))
    try:
        codes = [w.wait(timeout=300) for w in workers]
    finally:
        for log in logs:
            log.close()
    output = "\n".join((tmp_path / f"worker-{i}.log").read_text() for i in range(2))
    assert codes == [0, 0], output
    from genlab.tune.study import storage_from_url

    study = optuna.load_study(study_name="shared", storage=storage_from_url(f"journal:{journal}"))
    trials = study.get_trials()
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) and 10 <= len(trials) <= 11
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    runs = [t.user_attrs["run"] for t in trials]
    assert len(set(runs)) == len(runs) and all(Path(r, "config.json").is_file() for r in runs)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both workers took trials


def test_bad_settings_are_one_line_errors(tmp_path, capsys):
    from genlab.cli import main

    path = write_space(tmp_path, {"latent_dim": {"type": "int", "low": 2, "high": 4}})
    base = ["tune", "vae", "--data", "digits", "--space", str(path), "--out", str(tmp_path / "o")]
    for extra, message in (
        (["--sampler", "bayes"], "sampler must be one of"),
        (["--pruner", "sometimes"], "pruner must be one of"),
        (["--storage", "redis://x"], "unknown storage"),
        (["--trials", "0"], "--trials must be >= 1"),
        (["--folds", "1"], "--folds must be >= 2"),
        (["--protocol", "pytorch-fid"], "the digit features have one protocol"),
        (["--features", "inception", "--protocol", "torch"], "protocol"),
        (["--sampler", "grid", "--space", str(write_space(tmp_path, {
            "train.lr": {"type": "float", "low": 1e-3, "high": 1e-2}}))], "needs a step or a grid"),
    ):  # fmt: skip
        code = main([*base, *extra])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, err
    code = main([*base[:5], str(tmp_path / "missing.yaml")])
    assert code == 2 and "cannot read the search space" in capsys.readouterr().err


def test_the_objective_can_be_an_evaluation_metric(tmp_path):
    """nll_nats (the likelihood on the validation split) for a VAE, domain FID for a GAN."""
    vae_space = write_space(tmp_path, {"latent_dim": {"type": "categorical", "choices": [2, 3]}})
    study, _ = tune("vae", "digits", vae_space, sampler="grid", steps=3, metric="nll_nats",
                    fixed={**CHEAP, "iwae_k": "8"}, out=tmp_path / "vae")  # fmt: skip
    for trial in study.trials:
        saved = json.loads((Path(trial.user_attrs["run"]) / "eval.json").read_text())
        assert saved["split"] == "val" and trial.value == pytest.approx(saved["nll_nats"])
    gan_space = tmp_path / "gan.yaml"
    gan_space.write_text(yaml.safe_dump({"z_dim": {"type": "categorical", "choices": [2, 4]}}))
    study, _ = tune("dcgan", "digits", gan_space, sampler="grid", steps=2, metric="fid",
                    eval_n=200, fixed={"g_width": "4", "d_width": "4"}, out=tmp_path / "gan")  # fmt: skip
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert all(t.value > 0 for t in study.trials)
    with pytest.raises(GenlabError, match="no metric 'val_nope'"):
        tune("vae", "digits", vae_space, sampler="grid", steps=2, metric="val_nope",
             fixed=CHEAP, out=tmp_path / "nope")  # fmt: skip


def test_sqlite_warns_when_another_worker_is_in_the_study(tmp_path):
    from genlab.tune.study import storage_from_url

    url = f"sqlite:///{tmp_path / 'study.db'}"
    path = write_space(tmp_path, {"latent_dim": {"type": "categorical", "choices": [2, 3]}})
    other = optuna.create_study(study_name="s", storage=storage_from_url(url))
    other.ask()  # a trial another worker is running
    with pytest.warns(UserWarning, match="another worker is using this SQLite study"):
        tune("vae", "digits", path, sampler="random", trials=2, steps=2, storage=url,
             study="s", fixed=CHEAP, out=tmp_path / "out")  # fmt: skip


def test_the_command_reports_each_trial_and_the_files(tmp_path, capsys):
    from genlab.cli import main

    path = write_space(tmp_path, {"latent_dim": {"type": "categorical", "choices": [2, 3]}})
    args = ["tune", "vae", "--data", "digits", "--space", str(path), "--sampler", "grid",
            "--steps", "3", "--out", str(tmp_path / "out")]  # fmt: skip
    for key, value in CHEAP.items():
        args += ["-o", f"{key}={value}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "trial 0 complete" in out and "trial 1 complete" in out
    assert "best: trial" in out and "best.yaml" in out and "curves.png" in out


def test_best_yaml_leaves_out_how_the_trials_ran(tmp_path, capsys):
    """Trials evaluated every 5 steps for the pruner and trained 3 steps; the final run gets
    the model's own cadence and length, and the searched and model-defining options."""
    from genlab.cli import main

    path = write_space(tmp_path, {"latent_dim": {"type": "categorical", "choices": [3]}})
    fixed = {**CHEAP, "train.log_every": "1", "train.checkpoint_every": "2", "train.lr": "0.003"}
    _, written = tune("vae", "digits", path, sampler="grid", steps=3, fixed=fixed,
                      out=tmp_path / "out")  # fmt: skip
    text = written["best"].read_text()
    best = yaml.safe_load(text)
    assert best["model_config"] == {"arch": "mlp", "hidden": 16, "latent_dim": 3}
    assert best["train"] == {"batch_size": 32, "lr": 0.003}
    assert "train.eval_every=5" in text and "--steps 3" in text  # named in the header
    code = main(["train", "vae", "--data", "digits", "--config", str(written["best"]),
                 "--steps", "1", "--out", str(tmp_path / "final"), "-q"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    saved = json.loads((tmp_path / "final" / "config.json").read_text())
    assert saved["train"]["eval_every"] == VAE.train_defaults["eval_every"]
    assert saved["train"]["lr"] == 0.003 and saved["model_config"]["latent_dim"] == 3


def test_a_storage_password_never_appears_in_messages(tmp_path, capsys):
    """An unreachable PostgreSQL server (a port nothing listens on): the error shows the URL
    without its password."""
    import socket

    from genlab.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nothing listens there
    path = write_space(tmp_path, {"latent_dim": {"type": "int", "low": 2, "high": 4}})
    for url in (f"postgresql://genlab:S3cret-pw@127.0.0.1:{port}/genlab",
                f"postgresql://127.0.0.1:{port}/genlab?user=genlab&password=S3cret-pw",
                "redis://genlab:S3cret-pw@127.0.0.1/0"):  # fmt: skip
        code = main(["tune", "vae", "--data", "digits", "--space", str(path), "--trials", "1",
                     "--steps", "1", "--storage", url, "--out", str(tmp_path / "out")])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        assert "S3cret-pw" not in err and "***" in err, err
