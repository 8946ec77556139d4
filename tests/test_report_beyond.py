"""Tables and figures with methods beyond the paper's 18 and methods that do not apply
to the run's scenario (docs/methods.md#beyond-the-paper): the dagger and its legend,
"n/a" rows with the reason, left out of rankings, critical difference and figures, and
the paper's 18 ranked among themselves beside the full ranking."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from unlearnbench import methods, scores  # noqa: E402
from unlearnbench.report import critical_difference, figures, method_scope, tables  # noqa: E402

from synthetic import synthetic_metrics  # noqa: E402

PAPER_FEW = ["ft", "ga", "srl", "msg", "ct"]
REASON = methods.not_applicable_reason("unsir", "random")
SETTINGS = (("digits", "smallcnn"), ("digits", "resnet18"))


@pytest.fixture
def metrics_csv(tmp_path):
    """Five paper methods and SSD, with UNSIR not applicable (no job, NaN metrics)."""
    frame = synthetic_metrics(settings=SETTINGS, seeds=(0, 1, 2), methods=PAPER_FEW + ["ssd"], rng_seed=3)
    path = tmp_path / "metrics.csv"
    na = [(d, m, "unsir", s, REASON) for d, m in SETTINGS for s in (0, 1, 2)]
    scores.collect_metrics([], path, na)  # the collection's own n/a rows
    frame = pd.concat([frame.assign(applicable=True, na_reason=""), pd.read_csv(path)], ignore_index=True)
    frame.to_csv(path, index=False)
    return path


def test_read_metrics_leaves_not_applicable_rows_out_unless_asked(metrics_csv):
    assert "unsir" not in set(scores.read_metrics(metrics_csv)["method"])
    every = scores.read_metrics(metrics_csv, applicable_only=False)
    rows = every[every["method"] == "unsir"]
    assert len(rows) == 6 and not rows["applicable"].any() and rows["retain_acc"].isna().all()
    assert list(scores.not_applicable(metrics_csv)["na_reason"]) == [REASON, REASON]


def test_collect_metrics_refuses_a_not_applicable_row_without_reason(tmp_path):
    with pytest.raises(ValueError, match="needs a reason"):
        scores.collect_metrics([], tmp_path / "m.csv", [("digits", "smallcnn", "unsir", 0, "")])


def test_tables_mark_the_new_method_and_print_n_a_with_the_reason(metrics_csv, tmp_path):
    out = {name: tmp_path / f"{name}.md" for name in ("main", "rte", "rankings", "cd")}
    tables.write_main_table(metrics_csv, tmp_path / "main.csv", out["main"], tmp_path / "main.tex")
    tables.write_rte_table(metrics_csv, tmp_path / "rte.csv", out["rte"], tmp_path / "rte.tex")
    tables.write_rankings_table(metrics_csv, tmp_path / "r.csv", tmp_path / "m.csv", out["rankings"],
                                tmp_path / "r.tex")
    critical_difference.write_cd_table(metrics_csv, tmp_path / "cd.csv", tmp_path / "p.csv", out["cd"], tmp_path / "cd.tex")
    for name, path in out.items():
        md = path.read_text()
        assert "SSD†" in md and methods.LEGEND in md, name
        assert "FT†" not in md and "| FT " in md, name
        na_rows = [line for line in md.splitlines() if line.startswith("| UNSIR†")]
        assert na_rows and all(set(c.strip() for c in r.strip("|").split("|")[1:]) == {"n/a"} for r in na_rows), name
        assert REASON in md, name
    assert len([r for r in out["main"].read_text().splitlines() if r.startswith("| UNSIR†")]) == 2  # per setting
    for tex in ("main", "rte", "r", "cd"):
        text = (tmp_path / f"{tex}.tex").read_text()
        assert r"SSD\textdagger{}" in text and "†" not in text and "n/a" in text
    # nothing for UNSIR in the numbers: not ranked, not in the critical difference
    assert "unsir" not in set(pd.read_csv(tmp_path / "r.csv")["method"])
    cd = pd.read_csv(tmp_path / "cd.csv")
    assert "unsir" not in set(cd["method"]) and len(cd) == len(PAPER_FEW) + 1
    # the paper's claims are checked among the paper's methods alone
    claims_md = out["cd"].read_text().split("## Claims")[1].split("## Methods")[0]
    assert critical_difference.CLAIMS_AMONG_PAPER.strip() in claims_md
    assert f"place 1 of {len(PAPER_FEW)}," in claims_md or f"place 2 of {len(PAPER_FEW)}," in claims_md
    assert f"of {len(PAPER_FEW) + 1}," not in claims_md  # SSD is not counted


def test_rankings_show_the_papers_methods_ranked_among_themselves(metrics_csv, tmp_path):
    tables.write_rankings_table(metrics_csv, tmp_path / "r.csv", tmp_path / "m.csv", tmp_path / "r.md",
                                tmp_path / "r.tex")
    frame = scores.read_metrics(metrics_csv)
    paper_only = frame[frame["method"] != "ssd"].reset_index(drop=True)
    _, expected = tables.rankings_tables(None, paper_only)
    md = (tmp_path / "r.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| Method"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    at = columns.index(method_scope.PAPER_RANK)
    for _, row in expected.iterrows():
        line = next(line for line in md.splitlines() if line.startswith(f"| {methods.label(row['method'])} "))
        cell = [c.strip() for c in line.strip("|").split("|")][at].strip("*")
        assert cell.startswith(f"{row['mean_rank']:.1f}"), (row["method"], cell)
    ssd_line = next(line for line in md.splitlines() if line.startswith("| SSD† "))
    assert [c.strip() for c in ssd_line.strip("|").split("|")][at] == ""
    assert method_scope.PAPER_RANK_NOTE in md


def test_rankings_of_the_papers_methods_alone_need_no_extra_column(tmp_path):
    frame = synthetic_metrics(settings=SETTINGS, seeds=(0, 1), methods=PAPER_FEW, rng_seed=3)
    path = tmp_path / "metrics.csv"
    frame.to_csv(path, index=False)
    tables.write_rankings_table(path, tmp_path / "r.csv", tmp_path / "m.csv", tmp_path / "r.md", tmp_path / "r.tex")
    md = (tmp_path / "r.md").read_text()
    assert method_scope.PAPER_RANK not in md and methods.LEGEND not in md and "n/a" not in md


def test_a_figure_with_a_marked_label_gets_the_legend_line(tmp_path):
    texts = []
    for labels in (["FT", "SSD†"], ["FT", "GA"]):
        fig, ax = plt.subplots()
        ax.bar(range(2), [1, 2])
        ax.set_xticks(range(2), labels)
        figures.save(fig, tmp_path / "f.png", tmp_path / "f.pdf")
        texts.append([t.get_text() for t in fig.texts])
    assert texts == [[methods.LEGEND], []]


def test_figures_leave_not_applicable_methods_out(metrics_csv, tmp_path):
    figures.seed_spread(metrics_csv, tmp_path / "s.png", tmp_path / "s.pdf")
    assert (tmp_path / "s.png").stat().st_size > 0
    assert np.isfinite(scores.read_metrics(metrics_csv)["retain_acc"]).all()
