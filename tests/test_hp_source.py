"""Where each method's hyperparameters came from is recorded and shown, and a search
without a complete trial fails unless the config chooses the defaults.

hp_source: "search" (the chosen trial), "config" (no search: defaults with
method_params), "defaults" (every trial failed; search.on_no_complete_trial: defaults),
"recipe" (original and retrained references).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from unlearnbench.report import tables
from synthetic import synthetic_metrics

SOME = ["ft", "ga", "msg", "ct", "ff"]


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
    tables.write_cd_table(path, tmp_path / "cd.csv", tmp_path / "p.csv", tmp_path / "cd.md", tmp_path / "cd.tex")
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
