"""Hyperparameter search (docs/protocol.md §5): objectives, best-trial selection, failed and
pruned trials, resuming a killed study, and the real search rules on a tiny config."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from unlearnbench import methods, search
from unlearnbench.report import hyperparameters

REPO = Path(__file__).resolve().parents[1]


def toy_space(trial, epoch_cap):
    return {"x": trial.suggest_float("x", 0.0, 1.0), "k": trial.suggest_int("k", 1, epoch_cap),
            "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256])}


def toy_objective(hp):
    return (hp["x"], hp["k"] / 10, abs(hp["x"] - 0.5), 0.1)


def quiet(message):
    pass


# ----------------------------------------------------------------------------- units


def test_objectives_on_known_numbers():
    unlearned = {"retain_acc": 0.90, "forget_acc": 0.80, "val_acc": 0.70, "val_mia": 0.60, "test_acc": 0.0}
    retrained = {"retain_acc": 0.99, "forget_acc": 0.50, "val_acc": 0.70, "val_mia": 0.45}
    assert search.objectives(unlearned, retrained) == pytest.approx((0.03, 0.10, 0.0, 0.20))
    assert search.objectives({**unlearned, "val_mia": 0.35}, retrained)[3] == pytest.approx(0.30)
    assert search.objectives(retrained, retrained)[:3] == (0.0, 0.0, 0.0)


def frame(rows):
    return pd.DataFrame(rows, columns=["number", "state", "params_lr", "params_epochs", *search.OBJECTIVES])


def test_select_best_on_a_hand_made_frame():
    seed0 = frame([
        [0, "COMPLETE", 0.1, 3, 0.5, 0.0, 0.0, 0.0],      # norm 0.5
        [1, "FAIL", 0.2, 1, np.nan, np.nan, np.nan, np.nan],
        [2, "COMPLETE", 0.01, 2, 0.0, 0.5, 0.0, 0.0],     # norm 0.5: tie, later trial
        [3, "PRUNED", 0.5, 4, np.nan, np.nan, np.nan, np.nan],
    ])
    seed1 = frame([
        [0, "COMPLETE", 0.001, 4, 0.6, 0.8, 0.0, 0.0],    # norm 1.0
        [1, "COMPLETE", 0.002, 1, 0.0, 0.0, 0.0, 0.5],    # norm 0.5: tie, higher seed
        [2, "FAIL", 0.003, 2, 0.0, 0.0, 0.0, 0.0],        # zeros, but not complete
    ])
    best = search.select_best({1: seed1, 0: seed0}, "ft")
    assert best == {"method": "ft", "params": {"lr": 0.1, "epochs": 3}, "seed": 0, "trial": 0,
                    "norm": pytest.approx(0.5), "objectives": dict(zip(search.OBJECTIVES, [0.5, 0.0, 0.0, 0.0]))}
    assert isinstance(best["params"]["epochs"], int)
    seed1.loc[1, "mia_gap"] = 0.49  # now strictly the smallest
    best = search.select_best({0: seed0, 1: seed1})
    assert (best["seed"], best["trial"], best["params"]) == (1, 1, {"lr": 0.002, "epochs": 1})
    with pytest.raises(ValueError, match="no complete trial"):
        search.select_best({0: seed0[seed0["state"] != "COMPLETE"]}, "ft")


def test_the_defaults_row_competes_and_wins_ties():
    trials = frame([[0, "COMPLETE", 0.01, 2, 0.5, 0.0, 0.0, 0.0], [1, "COMPLETE", 0.02, 3, 0.0, 0.6, 0.0, 0.0]])
    result = {"values": [0.0, 0.0, 0.5, 0.0], "seconds": 1.5, "user_attrs": {"unlearn_seed": 0}}
    table = search.with_defaults_row(trials, result, {"lr": 0.1, "epochs": 10, "momentum": 0.9})
    assert list(table["number"]) == [-1, 0, 1] and table.loc[0, "user_attrs_start"] == "method defaults"
    assert "params_momentum" not in table.columns  # not sampled: not a param of the study
    best = search.select_best({0: table}, "ft")
    assert (best["trial"], best["params"]) == (search.DEFAULTS_NUMBER, {"lr": 0.1, "epochs": 10})
    table.loc[1, "retain_gap"] = 0.4
    assert search.select_best({0: table})["trial"] == 0
    failed = {"state": "FAIL", "values": None, "seconds": 0.5, "user_attrs": {"reason": "ValueError: diverged"}}
    table = search.with_defaults_row(trials, failed, {"lr": 0.1, "epochs": 10})
    assert table.loc[0, "state"] == "FAIL" and math.isnan(table.loc[0, "norm"])
    assert search.select_best({0: table})["trial"] == 0


def test_failed_evaluations_count_as_complete_with_infinite_objectives(tmp_path):
    """docs/reference.md S2, as the reference's objectives.py: a failed evaluation
    (EvaluationFailed, or non-finite objectives) is a COMPLETE trial with infinite
    objectives inside the budget; a failing unlearning is FAIL and a pruned trial PRUNED,
    neither counted."""
    calls = []

    def objective(hp, trial):
        calls.append(trial.number)
        if trial.number in (1, 4):
            raise RuntimeError("the unlearning failed")
        if trial.number == 2:
            return (math.nan, 0.0, 0.0, 0.0)
        if trial.number == 3:
            raise search.EvaluationFailed("the MIA's logistic regression got NaN losses")
        if trial.number == 5:
            raise optuna.TrialPruned("batch size too large")
        return toy_objective(hp)

    study = search.run_study(objective, toy_space, 4, tmp_path / "s.journal", "toy", 0, 4, progress=False, log=quiet)
    table = search.trials_frame(study)
    assert list(table["state"]) == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE", "FAIL", "PRUNED", "COMPLETE"]
    reasons = table.set_index("number")["user_attrs_reason"]
    assert reasons[1] == "RuntimeError: the unlearning failed" and "non-finite" in reasons[2]
    assert reasons[3] == "evaluation failed: the MIA's logistic regression got NaN losses"
    assert "batch size too large" in reasons[5]
    assert table.loc[table["state"] == "FAIL", list(search.OBJECTIVES)].isna().all().all()
    assert np.isinf(table.loc[[2, 3], list(search.OBJECTIVES)].to_numpy()).all()
    assert np.isinf(table.loc[[2, 3], "norm"]).all()
    assert calls == list(range(7))
    assert {"params_x", "params_k", "params_batch_size", "seconds", "norm"} <= set(table.columns)
    # an infinite trial never wins
    assert search.select_best({0: table})["trial"] in (0, 6)
    # the budget is met: a rerun does nothing; a lower budget reports only its trials
    again = search.run_study(objective, toy_space, 4, tmp_path / "s.journal", "toy", 0, 4, progress=False, log=quiet)
    assert len(again.trials) == 7 and calls == list(range(7))
    assert list(search.trials_frame(again, 1)["number"]) == [0]
    assert list(search.trials_frame(again, 2)["number"]) == [0, 1, 2]


def test_a_study_that_only_fails_gives_up(tmp_path):
    def objective(hp):
        raise ValueError("always")

    with pytest.raises(search.SearchError, match="only 0 of 2 trials complete after 6 attempts"):
        search.run_study(objective, toy_space, 2, tmp_path / "s.journal", "toy", 0, 4, progress=False, log=quiet)


def test_same_seed_same_trials_and_enqueued_start(tmp_path):
    start = [{"x": 0.5, "k": 1, "batch_size": 64, "user_attrs": {"start": "defaults"}}]
    runs = [search.trials_frame(search.run_study(toy_objective, toy_space, 4, tmp_path / f"{i}.journal", "toy", 7, 4,
                                                 progress=False, log=quiet, enqueue=start))
            for i in range(2)]
    columns = ["params_x", "params_k", "params_batch_size", *search.OBJECTIVES]
    pd.testing.assert_frame_equal(runs[0][columns], runs[1][columns])
    assert runs[0].loc[0, ["params_x", "params_k", "params_batch_size"]].tolist() == [0.5, 1, 64]
    assert runs[0].loc[0, "user_attrs_start"] == "defaults"


def test_a_journal_with_other_inputs_starts_afresh_and_big_batches_are_flagged(tmp_path):
    journal = tmp_path / "s.journal"
    search.run_study(toy_objective, toy_space, 2, journal, "toy", 0, 4, progress=False, log=quiet, fingerprint="a")
    same = search.run_study(toy_objective, toy_space, 2, journal, "toy", 0, 4, progress=False, log=quiet,
                            fingerprint="a")
    assert len(same.trials) == 2
    messages = []
    other = search.run_study(toy_objective, toy_space, 1, journal, "toy", 0, 4, progress=False,
                             log=messages.append, fingerprint="b")
    assert len(other.trials) == 1 and any("afresh" in m for m in messages)
    assert search.oversized_batches({"batch_size": 256, "retain_batch_size": 128, "lr": 500}, 128) == \
        {"batch_size": 256}
    assert search.oversized_batches({"batch_size": 256}, None) == {}


STUDY_SCRIPT = textwrap.dedent("""
    import sys, time
    from unlearnbench import search
    from test_search import toy_space, toy_objective

    journal, n, delay, calls = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]

    def objective(hp, trial):
        with open(calls, "a") as fh:
            fh.write(f"{trial.number}\\n")
        time.sleep(delay)
        return toy_objective(hp)

    search.run_study(objective, toy_space, n, journal, "toy", 3, 4, progress=False,
                     log=lambda m: print(m, flush=True))
""")


def test_killed_study_resumes_to_the_full_budget(tmp_path):
    script = tmp_path / "study.py"
    script.write_text(STUDY_SCRIPT)
    journal, calls = tmp_path / "s.journal", tmp_path / "calls.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script), str(journal), "8", "0.3", str(calls)],
                            stdout=subprocess.PIPE, text=True, env=env)
    complete = 0
    for line in proc.stdout:
        complete += " COMPLETE " in line
        if complete == 3:
            break
    deadline = time.monotonic() + 30
    while calls.read_text().split()[-1] != "3" and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # mid-way through trial 3 (its objective sleeps 0.3 s)
    proc.wait(timeout=30)
    assert complete == 3 and calls.read_text().split() == ["0", "1", "2", "3"]

    resumed = []

    def objective(hp, trial):
        resumed.append(trial.number)
        return toy_objective(hp)

    study = search.run_study(objective, toy_space, 8, journal, "toy", 3, 4, progress=False, log=quiet)
    table = search.trials_frame(study)
    # the interrupted trial 3 was rerun as trial 3: the study is the uninterrupted one
    assert list(table["state"]) == ["COMPLETE"] * 8 and resumed == list(range(3, 8))
    reference = search.trials_frame(search.run_study(toy_objective, toy_space, 8, tmp_path / "ref.journal", "toy", 3,
                                                     4, progress=False, log=quiet))
    columns = ["number", "params_x", "params_k", "params_batch_size", *search.OBJECTIVES]
    pd.testing.assert_frame_equal(table[columns], reference[columns], check_dtype=False)
    # the resumed trials do not replay the random draws of the first ones
    assert table["params_x"].nunique() == 8


# ----------------------------------------------------------------------------- workflow

TINY = """
datasets: [digits]
models: [smallcnn]
seeds: [0]
methods: [ft, ga]
training:
  digits: {epochs: 2}
search:
  trials: {smallcnn: 2}  # the per-model form (one number works alike)
  seeds: [0]
  include_defaults: true  # the defaults row competes (row -1)
  start_from_defaults: true  # trial 0: the defaults moved into the space (epochs capped at E_max = 1)
device: cpu
ulira: {methods: [ft]}  # U-LiRA reuses the main search's choices: only methods it covers
"""


def train_references(root: Path, cfg: dict) -> None:
    """What the splits, init and train_reference rules would write, in their order."""
    from unlearnbench import config as ub_config
    from unlearnbench.jobs import reference
    from unlearnbench.jobs.context import Context

    cfg = ub_config.validate(cfg)
    base = root / "results/digits"
    reference.write_splits("digits", base / "splits.npz")
    reference.write_init("digits", "smallcnn", 0, base / "smallcnn/init/seed0.safetensors")
    ctx = Context("digits", base / "splits.npz", device="cpu", threads=1)
    for kind in ("original", "retrained"):
        reference.train_reference(ctx, "smallcnn", kind, 0, ub_config.recipe(cfg, "digits"),
                                  base / "smallcnn/init/seed0.safetensors", base / f"smallcnn/{kind}/seed0.safetensors",
                                  base / f"smallcnn/{kind}/seed0.json", base / f"smallcnn/metrics/{kind}/seed0.json")


@pytest.mark.workflow
def test_search_rules_on_a_tiny_config(tmp_path):
    for name in ("Snakefile", "workflow", "envs", "profiles"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    (tmp_path / "tiny.yaml").write_text(TINY)
    train_references(tmp_path, yaml.safe_load(TINY))  # in-process: two fewer job start-ups
    targets = ["results/tables/hyperparameters.csv", "results/digits/smallcnn/metrics/ft/seed0.json"]
    run = subprocess.run([str(Path(sys.executable).with_name("snakemake")), *targets, "--cores", "2",
                          "--configfile", "tiny.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]

    base = tmp_path / "results/digits/smallcnn/search"
    for method in ("ft", "ga"):
        trials = search.read_trials(base / method / "seed0.csv")
        assert list(trials["number"]) == [-1, 0, 1] and (trials["state"] == "COMPLETE").all()  # defaults + 2
        assert (base / method / "seed0.journal").exists()
        best = json.loads((base / method / "best.json").read_text())
        again = search.select_best({0: trials}, method)
        assert (best["seed"], best["trial"], best["params"]) == (again["seed"], again["trial"], again["params"])
        assert best["norm"] == pytest.approx(again["norm"])
        assert best["objectives"] == pytest.approx(again["objectives"])
        assert best["norm"] == pytest.approx(float(trials["norm"].min()))
        assert trials.loc[0, "user_attrs_start"] == "method defaults"
        assert trials.loc[1, "user_attrs_start"] == search.START_FROM_DEFAULTS
        full = {"ft": 5, "ga": 10}[method]  # the defaults in docs/methods.md, and capped at E_max = 1 in trial 0
        assert (trials.loc[0, "params_epochs"], trials.loc[1, "params_epochs"]) == (full, 1)
    ft = search.read_trials(base / "ft" / "seed0.csv").set_index("number")
    assert (ft.loc[0, "params_lr"], ft.loc[0, "params_batch_size"]) == (0.1, 256)
    table = pd.read_csv(tmp_path / "results/tables/hyperparameters.csv")
    assert list(table["method"]) == ["ft", "ga"]
    assert "| FT " in (tmp_path / "results/tables/hyperparameters.md").read_text()

    metrics = json.loads((tmp_path / "results/digits/smallcnn/metrics/ft/seed0.json").read_text())
    best = json.loads((base / "ft" / "best.json").read_text())
    assert metrics["hyperparameters_source"]["from"] == "search"
    assert metrics["hp_source"] == best["hp_source"] == "search"
    assert metrics["hyperparameters_source"]["trial"] == best["trial"]
    assert {k: metrics["hyperparameters"][k] for k in best["params"]} == best["params"]


def test_defaults_move_into_the_search_space():
    def space(trial, epoch_cap):
        epochs = trial.suggest_int("epochs", 1, epoch_cap)
        return {"epochs": epochs, "reset_epoch": trial.suggest_int("reset_epoch", 1, epochs),  # conditional
                "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True),
                "alpha": trial.suggest_float("alpha", 0.0, 1.0, step=0.25),
                "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
                "mode": trial.suggest_categorical("mode", ["a", "b"]),
                "free": trial.suggest_float("free", 0.0, 1.0)}

    defaults = {"epochs": 10, "reset_epoch": 5, "weight_decay": 0.0, "alpha": 0.6, "batch_size": 32, "mode": "c",
                "lr": 0.1}
    # epochs capped, reset_epoch within the capped epochs, 0 onto the log range's low end,
    # onto the step, the nearest choice; "mode" (no numeric choice near "c") and "free"
    # (no default) are left to the sampler; "lr" is not in the space
    assert search.defaults_in_space(space, defaults, 3) == {
        "epochs": 3, "reset_epoch": 3, "weight_decay": 1e-5, "alpha": 0.5, "batch_size": 64}
    inside = {"epochs": 2, "reset_epoch": 1, "weight_decay": 5e-4, "alpha": 0.25, "batch_size": 128, "mode": "b",
              "free": 0.3}
    assert search.defaults_in_space(space, inside, 3) == inside  # already inside: unchanged


@pytest.mark.parametrize("method", methods.names())
def test_every_methods_defaults_start_a_study_as_a_valid_trial(method, tmp_path):
    """The enqueued defaults are accepted by Optuna as trial 0 (BT's weight decay 0 is not
    on the log-uniform range, SCRUB's retain batch 32 not a choice: both used to fail it)
    and equal the projected values."""
    space = methods.get(method).search_space
    start = search.defaults_in_space(space, methods.hyperparameters(method, {}), 2)
    seen = {}

    def objective(hp):
        seen.update(hp)
        return (0.1, 0.1, 0.1, 0.1)

    study = search.run_study(objective, space, 1, tmp_path / "s.journal", method, 0, 2, progress=False, log=quiet,
                             enqueue=[start])
    assert [t.state.name for t in study.trials] == ["COMPLETE"]
    assert {k: seen[k] for k in start} == pytest.approx(start)
    assert all(v <= 2 for k, v in start.items() if k == "epochs" or k.endswith("_epochs") or k == "reset_epoch")


def test_hyperparameter_table_keeps_a_method_whose_studies_all_failed(tmp_path):
    """A method with no complete trial (every setting diverged, e.g. FF on resnet18) is
    listed with its defaults and no objectives, not dropped and not an error."""
    chosen = {"dataset": "digits", "model": "smallcnn", "method": "ft", "seed": 0, "trial": 1, "norm": 0.25,
              "objectives": dict(zip(search.OBJECTIVES, (0.1, 0.2, 0.05, 0.1))), "params": {"lr": 0.05}}
    failed = {"dataset": "digits", "model": "smallcnn", "method": "ff", "seed": None, "trial": None, "norm": None,
              "objectives": None, "params": {}, "source": "method defaults: no complete trial"}
    paths = []
    for best in (failed, chosen):
        paths.append(tmp_path / f"{best['method']}.json")
        paths[-1].write_text(json.dumps(best))
    table = hyperparameters.write_hyperparameters_table(paths, tmp_path / "h.csv", tmp_path / "h.md")
    assert list(table["method"]) == ["ft", "ff"]  # paper order
    assert table.loc[1, list(search.OBJECTIVES) + ["norm"]].isna().all()
    assert table.loc[0, "norm"] == 0.25 and table.loc[0, "retain_gap"] == 0.1
    md = (tmp_path / "h.md").read_text()
    assert "| FF " in md and "none complete: defaults" in md and "(defaults)" in md and "0.2500" in md


def test_hyperparameter_table_prints_a_method_that_does_not_apply_as_n_a(tmp_path):
    """A configured method that does not apply to the scenario (a class-wise one on random
    forget sets) is not searched: listed "n/a" with its reason, not dropped."""
    chosen = {"dataset": "digits", "model": "smallcnn", "method": "ft", "seed": 0, "trial": 1, "norm": 0.25,
              "objectives": dict(zip(search.OBJECTIVES, (0.1, 0.2, 0.05, 0.1))), "params": {"lr": 0.05}}
    (tmp_path / "ft.json").write_text(json.dumps(chosen))
    reason = methods.not_applicable_reason("unsir", "random")
    table = hyperparameters.write_hyperparameters_table([tmp_path / "ft.json"], tmp_path / "h.csv", tmp_path / "h.md",
                                                        [("digits", "smallcnn", "unsir", reason)] * 2)
    assert list(table["method"]) == ["ft", "unsir"] and table.loc[1, "na_reason"] == reason
    md = (tmp_path / "h.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| UNSIR†"))
    assert [c.strip() for c in row.strip("|").split("|")][1:3] == ["n/a", "-"] and f"n/a: {reason}" in md
