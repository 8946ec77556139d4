"""Where each method's hyperparameters came from is recorded and shown, and a search
without a complete trial fails unless the config chooses the defaults.

hp_source: "search" (the chosen trial), "config" (no search: defaults with
method_params), "defaults" (every trial failed; search.on_no_complete_trial: defaults),
"recipe" (original and retrained references).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from unlearnbench.config import SearchSettings
from unlearnbench.report import critical_difference, tables
from unlearnbench.search import OBJECTIVES, SearchError
from synthetic import synthetic_metrics

SOME = ["ft", "ga", "msg", "ct", "ff"]
SETTINGS = SearchSettings(trials=2, epoch_cap=2, method_params={})


def metrics_with(tmp_path, changes=None) -> Path:
    frame = synthetic_metrics(settings=(("digits", "smallcnn"), ("digits", "resnet18")), seeds=(0, 1, 2),
                              methods=SOME, rng_seed=4)
    for (model, method), source in (changes or {}).items():
        frame.loc[(frame["model"] == model) & (frame["method"] == method), "hp_source"] = source
    path = tmp_path / "metrics.csv"
    frame.to_csv(path, index=False)
    return path


def test_every_table_marks_a_method_run_with_its_defaults_after_a_failed_search(tmp_path):
    path = metrics_with(tmp_path, {("resnet18", "ff"): "defaults"})
    main = tables.write_main_table(path, tmp_path / "main.csv", tmp_path / "main.md", tmp_path / "main.tex")
    assert set(main.loc[main["method"] == "ff", "hp_source"]) == {"search", "defaults"}
    md = (tmp_path / "main.md").read_text()
    rows = {name: [line for line in md.split(f"## digits / {name}")[1].split("##")[0].splitlines()
                   if line.startswith("| ")] for name in ("resnet18", "smallcnn")}
    resnet, smallcnn = "\n".join(rows["resnet18"]), "\n".join(rows["smallcnn"])
    assert "| FF [defaults]" in resnet and "[defaults]" not in smallcnn
    assert tables.HP_NOTE in md and "[defaults]" in (tmp_path / "main.tex").read_text()

    tables.write_rte_table(path, tmp_path / "rte.csv", tmp_path / "rte.md", tmp_path / "rte.tex")
    assert "| FF [defaults]" in (tmp_path / "rte.md").read_text()
    tables.write_rankings_table(path, tmp_path / "r.csv", tmp_path / "m.csv", tmp_path / "r.md", tmp_path / "r.tex")
    ff_line = next(line for line in (tmp_path / "r.md").read_text().splitlines() if line.startswith("| FF"))
    resnet_cell, smallcnn_cell = ff_line.split("|")[2], ff_line.split("|")[3]
    header = next(line for line in (tmp_path / "r.md").read_text().splitlines() if line.startswith("| Method"))
    assert "resnet18" in header.split("|")[2] and "[defaults]" in resnet_cell and "[defaults]" not in smallcnn_cell
    critical_difference.write_cd_table(path, tmp_path / "cd.csv", tmp_path / "p.csv", tmp_path / "cd.md", tmp_path / "cd.tex")
    assert "| FF [defaults]" in (tmp_path / "cd.md").read_text()


def test_an_unsearched_run_is_said_once_not_marked_per_row(tmp_path):
    path = metrics_with(tmp_path, {(model, m): "config" for model in ("smallcnn", "resnet18") for m in SOME})
    tables.write_main_table(path, tmp_path / "main.csv", tmp_path / "main.md", tmp_path / "main.tex")
    md = (tmp_path / "main.md").read_text()
    assert "[config]" not in md and tables.NO_SEARCH_NOTE in md and tables.HP_NOTE not in md


def test_a_searched_run_has_no_marks_or_hp_note(tmp_path):
    path = metrics_with(tmp_path)
    tables.write_main_table(path, tmp_path / "main.csv", tmp_path / "main.md", tmp_path / "main.tex")
    md = (tmp_path / "main.md").read_text()
    assert "[defaults]" not in md and "[config]" not in md and tables.HP_NOTE not in md


@pytest.mark.parametrize("source, searched, mark", [("defaults", True, " [defaults]"), ("search", True, ""),
                                                     ("config", True, " [config]"), ("config", False, ""),
                                                     ("search+defaults", True, " [defaults]")])
def test_hp_mark(source, searched, mark):
    assert tables.hp_mark(source, searched) == mark


# --- the config key ---------------------------------------------------------------------------

def test_on_no_complete_trial_key():
    from unlearnbench import config as ub_config

    assert ub_config.on_no_complete_trial(ub_config.validate({}), "ff") == "fail"  # the default
    config = ub_config.validate({"search": {"on_no_complete_trial": {"ff": "defaults"}}})
    assert ub_config.on_no_complete_trial(config, "ff") == "defaults"
    assert ub_config.on_no_complete_trial(config, "ft") == "fail"
    config = ub_config.validate({"search": {"on_no_complete_trial": "defaults"}})
    assert ub_config.on_no_complete_trial(config, "ft") == "defaults"
    with pytest.raises(ub_config.ConfigError, match="search.on_no_complete_trial.*'fx'"):
        ub_config.validate({"search": {"on_no_complete_trial": {"fx": "defaults"}}})
    with pytest.raises(ub_config.ConfigError, match="search.on_no_complete_trial"):
        ub_config.validate({"search": {"on_no_complete_trial": "retry"}})


# --- the jobs ---------------------------------------------------------------------------------


def trials_csv(root: Path, seed: int, states: list[str], method: str = "ff") -> Path:
    rows = []
    for number, state in enumerate(states):
        ok = state == "COMPLETE"
        rows.append({"number": number, "state": state, "params_lr": 0.01 * (number + 1),
                     **{k: 0.1 * (number + 1) if ok else float("nan") for k in OBJECTIVES},
                     "norm": 0.2 * (number + 1) if ok else float("nan"), "seconds": 1.0,
                     "user_attrs_reason": None if ok else
                     ("pruned: batch size" if state == "PRUNED" else
                      "FloatingPointError: the unlearned model diverged (non-finite logits)")})
    path = root / "digits" / "resnet18" / "search" / method / f"seed{seed}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_a_study_without_a_complete_trial_fails_select_best_with_its_reasons(tmp_path):
    from unlearnbench.jobs.search import select_best_job

    csv = trials_csv(tmp_path, 0, ["FAIL", "FAIL", "PRUNED"])
    out = tmp_path / "best.json"
    with pytest.raises(SearchError) as err:
        select_best_job([csv], out, "ff")  # the default: fail
    message = str(err.value)
    assert "digits/resnet18/ff" in message and "seed(s) 0" in message
    assert "2 FAIL (FloatingPointError: the unlearned model diverged" in message and "1 PRUNED" in message
    assert "search.on_no_complete_trial: {ff: defaults}" in message
    assert not out.exists()


def test_one_job_mode_fails_like_select_best_and_says_where_the_trials_are(tmp_path, monkeypatch):
    """search.one_job: the same failure as the select_best job, before any final run, and
    the message says that the trials CSVs go with the failed job's outputs while the
    journals and the log keep every trial."""
    from unlearnbench.jobs import method

    csv = trials_csv(tmp_path, 0, ["FAIL", "FAIL"])
    monkeypatch.setattr(method, "search_job", lambda *args, **kwargs: None)  # the study already ran
    monkeypatch.setattr(method, "unlearn_job", lambda *args, **kwargs: pytest.fail("no final run after a failure"))
    with pytest.raises(SearchError) as err:
        method.search_unlearn_job(None, "resnet18", "ff", [0], [0, 1], SETTINGS, {0: "o0", 1: "o1"}, ["r0"], [csv],
                                  tmp_path / "best.json", [tmp_path / "m0.json", tmp_path / "m1.json"])
    message = str(err.value)
    assert "2 FAIL (FloatingPointError" in message and "search.on_no_complete_trial: {ff: defaults}" in message
    assert "journals" in message and not (tmp_path / "best.json").exists()


def test_one_empty_study_among_several_also_fails(tmp_path):
    from unlearnbench.jobs.search import select_best_job

    csvs = [trials_csv(tmp_path, 0, ["COMPLETE", "FAIL"]), trials_csv(tmp_path, 1, ["FAIL", "FAIL"])]
    with pytest.raises(SearchError, match=r"seed\(s\) 1 hold no complete trial"):
        select_best_job(csvs, tmp_path / "best.json", "ff", on_no_complete_trial="fail")


def test_on_no_complete_trial_defaults_runs_the_defaults_and_says_so(tmp_path):
    from unlearnbench.jobs.search import select_best_job
    from unlearnbench.jobs.unlearn import chosen_hyperparameters

    csv = trials_csv(tmp_path, 0, ["FAIL", "FAIL"])
    out = tmp_path / "best.json"
    select_best_job([csv], out, "ff", on_no_complete_trial="defaults")
    best = json.loads(out.read_text())
    assert best["hp_source"] == "defaults" and best["trial"] is None and best["params"] == {}
    assert "2 FAIL (FloatingPointError" in best["failures"]["0"]
    hp, source = chosen_hyperparameters("ff", {"epochs": 2}, out)
    assert hp == {"epochs": 2} and source["hp_source"] == "defaults"

    # with a study that did complete a trial, the choice is made among those, and is a search result
    csvs = [trials_csv(tmp_path, 0, ["COMPLETE", "FAIL"]), trials_csv(tmp_path, 1, ["FAIL", "FAIL"])]
    select_best_job(csvs, out, "ff", on_no_complete_trial="defaults")
    best = json.loads(out.read_text())
    assert (best["hp_source"], best["seed"], best["trial"]) == ("search", 0, 0) and "1" in best["failures"]
    assert chosen_hyperparameters("ff", None, out)[1]["hp_source"] == "search"
    assert chosen_hyperparameters("ff", {"epochs": 2}, None)[1]["hp_source"] == "config"


def study_inputs(tmp_path):
    """A digits split file, smallcnn's initialisation as the original, made-up retrained
    metrics and the job's Context: what one search study reads."""
    from unlearnbench.jobs import reference
    from unlearnbench.jobs.context import Context

    base = tmp_path / "digits"
    reference.write_splits("digits", base / "splits.npz")
    reference.write_init("digits", "smallcnn", 0, base / "init.safetensors")
    retrained = base / "retrained.json"
    retrained.write_text(json.dumps({"retain_acc": 0.9, "forget_acc": 0.8, "val_acc": 0.8, "val_mia": 0.5}))
    return base, retrained, Context("digits", base / "splits.npz", device="cpu", threads=1)


def test_search_job_logs_and_records_every_failure_reason(tmp_path, monkeypatch, capsys):
    """A method whose unlearning fails in every trial: the study gives up, its trials CSV
    and log hold each trial's reason, and select_best then fails with them, traceback
    last in its log."""
    from unlearnbench.jobs import unlearn
    from unlearnbench.jobs.search import search_job, select_best_job
    from unlearnbench.logs import logging_to

    def failing(*_args, **_kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(unlearn, "unlearn_copy", failing)
    base, retrained, ctx = study_inputs(tmp_path)
    csv = base / "smallcnn" / "search" / "ft" / "seed0.csv"
    search_job(ctx, "smallcnn", "ft", 0, SETTINGS._replace(trials=1), base / "init.safetensors", retrained, csv,
               progress=False)
    trials = pd.read_csv(csv)
    assert list(trials["state"]) == ["FAIL"] * 3  # 3 attempts for a budget of 1
    assert trials["user_attrs_reason"].str.contains("RuntimeError: out of memory").all()
    assert "3 FAIL (RuntimeError: out of memory" in capsys.readouterr().out
    log = tmp_path / "best.log"
    with pytest.raises(SearchError), logging_to(log):
        select_best_job([csv], base / "best.json", "ft")
    text = log.read_text().rstrip().splitlines()
    assert text[-1].startswith("unlearnbench.search.SearchError: digits/smallcnn/ft") and "3 FAIL" in text[-1]


def test_a_diverging_evaluation_is_a_complete_trial_with_infinite_objectives(tmp_path, monkeypatch):
    """docs/reference.md S2: a diverged model's evaluation fails; the trial is COMPLETE
    with infinite objectives and counts towards the budget (so a budget of 2 makes 2
    trials), and a study of only such trials has no usable trial for select_best."""
    from unlearnbench.jobs.search import search_job, select_best_job

    base, retrained, ctx = study_inputs(tmp_path)
    monkeypatch.setattr(ctx, "evaluate", lambda net: {"retain_acc": 0.1, "forget_acc": 0.1, "val_acc": 0.1,
                                                      "val_mia": float("nan"), "diverged": True})
    csv = base / "smallcnn" / "search" / "ft" / "seed0.csv"
    settings = SETTINGS._replace(trials=2, epoch_cap=1, include_defaults=True)
    search_job(ctx, "smallcnn", "ft", 0, settings, base / "init.safetensors", retrained, csv, progress=False)
    trials = pd.read_csv(csv)
    assert list(trials["number"]) == [-1, 0, 1] and set(trials["state"]) == {"COMPLETE"}
    assert np.isinf(trials["norm"]).all()
    assert trials["user_attrs_reason"].str.startswith("evaluation failed: FloatingPointError: the unlearned "
                                                      "model diverged").all()
    assert (trials["user_attrs_diverged"] == True).all()  # noqa: E712 (the measurement is kept)
    with pytest.raises(SearchError, match="hold no complete trial with finite objectives"):
        select_best_job([csv], base / "best.json", "ft")


def test_metrics_json_records_hp_source_device_and_precision(tmp_path):
    from unlearnbench import config as ub_config
    from unlearnbench import scores
    from unlearnbench.jobs import reference
    from unlearnbench.jobs.context import Context
    from unlearnbench.jobs.unlearn import unlearn_job

    base = tmp_path / "results" / "digits"
    reference.write_splits("digits", base / "splits.npz")
    init = base / "smallcnn" / "init" / "seed0.safetensors"
    reference.write_init("digits", "smallcnn", 0, init)
    ctx = Context("digits", base / "splits.npz", device="cpu", precision="auto", threads=1)
    metrics = {k: base / "smallcnn" / "metrics" / k / "seed0.json" for k in ("original", "ft")}
    recipe = {**ub_config.recipe({}, "digits"), "epochs": 1}
    reference.train_reference(ctx, "smallcnn", "original", 0, recipe, init, base / "o.safetensors",
                              base / "o.json", metrics["original"])
    unlearn_job(ctx, "smallcnn", "ft", [0], {"epochs": 1}, [base / "o.safetensors"], [metrics["ft"]])
    for kind, source in (("original", "recipe"), ("ft", "config")):
        record = json.loads(metrics[kind].read_text())
        assert record["hp_source"] == source
        assert record["device"] == "cpu" and record["precision"] == ctx.precision
        assert ctx.precision in ("fp32", "bf16")  # auto resolved, never "auto"
    frame = scores.collect_metrics(list(metrics.values()), tmp_path / "metrics.csv")
    assert set(frame["hp_source"]) == {"recipe", "config"} and set(frame["device"]) == {"cpu"}


def test_one_job_and_reference_job_refuse_mismatched_path_lists_before_any_work(tmp_path, monkeypatch):
    """A search seed without its retrained metrics or trials path, or a reference kind
    without its paths, is refused before a study runs or an initialisation is written."""
    from unlearnbench.jobs import method, reference

    monkeypatch.setattr(method, "search_job", lambda *args, **kwargs: pytest.fail("no study with bad paths"))
    with pytest.raises(ValueError, match="2 search seeds need as many retrained metrics and trials paths"):
        method.search_unlearn_job(None, "smallcnn", "ft", [0, 1], [0], SETTINGS, {0: "o0", 1: "o1"}, ["r0"],
                                  [tmp_path / "s0.csv", tmp_path / "s1.csv"], tmp_path / "best.json",
                                  [tmp_path / "m0.json"])
    init = tmp_path / "init.safetensors"
    with pytest.raises(ValueError, match="2 reference kinds need as many model, info and metrics paths"):
        reference.train_references(None, "smallcnn", 0, {}, ["original", "retrained"], init,
                                   [tmp_path / "o.safetensors"], [tmp_path / "o.json"], [tmp_path / "om.json"])
    assert not init.exists()
