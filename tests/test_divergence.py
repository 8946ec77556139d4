"""A diverged model (non-finite outputs) is flagged everywhere and never scores well.

Its accuracies are measured (non-finite rows count as wrong), its MIA is undefined
(NaN), metrics.csv keeps the flags, tables print "diverged" and never mark it best,
and rankings, the critical-difference analysis and the figures put it below every
method that did not diverge (docs/protocol.md §4; README, "Flags").
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from unlearnbench import evaluate, scores
from unlearnbench.report import critical_difference, figures, tables
from synthetic import synthetic_metrics

from conftest import tiny_split

SPLITS = ("retain", "forget", "val", "test")


def four_splits():
    return {k: tiny_split(40, i) for i, k in enumerate(SPLITS)}


class AllNaN(nn.Module):
    def forward(self, x):
        return torch.full((len(x), 10), float("nan"))


class Exploded(nn.Module):
    def forward(self, x):
        out = torch.zeros(len(x), 10)
        out[::2] = float("nan")
        out[1::4] = float("inf")
        return out


class NaNOnBlankImages(nn.Module):
    """Healthy (random but finite logits) except on constant images."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        flat = x.flatten(1)
        out = self.linear(flat)
        blank = flat.amax(1) == flat.amin(1)
        return torch.where(blank[:, None], torch.full_like(out, float("nan")), out)


# --- evaluation -------------------------------------------------------------------------------

def test_completely_diverged_model_has_no_mia_and_is_flagged():
    metrics = evaluate.evaluate(AllNaN(), four_splits())
    assert metrics["diverged"] is True and metrics["nonfinite_fraction"] == 1.0
    assert math.isnan(metrics["val_mia"]) and math.isnan(metrics["test_mia"])  # not 0.5 ("indiscernible")
    assert all(metrics[f"{k}_acc"] == 0.0 for k in SPLITS)


def test_partly_diverged_model_is_flagged_with_its_share_of_rows():
    metrics = evaluate.evaluate(Exploded(), four_splits())
    assert metrics["diverged"] is True
    assert metrics["nonfinite_fraction"] == pytest.approx(0.75)  # rows 0::2 NaN, 1::4 inf
    assert math.isnan(metrics["val_mia"]) and math.isnan(metrics["test_mia"])
    assert all(math.isfinite(metrics[f"{k}_acc"]) for k in SPLITS)
    preds = evaluate.predict(Exploded(), four_splits()["test"])
    assert not preds.correct[::2].any()


def test_non_finite_rows_outside_the_mia_sets_keep_the_mia():
    splits = four_splits()
    splits["retain"].images[0] = 7  # one blank image: the only non-finite row
    metrics = evaluate.evaluate(NaNOnBlankImages(), splits)
    assert metrics["diverged"] is True and metrics["nonfinite_fraction"] == pytest.approx(1 / 160)
    assert math.isfinite(metrics["val_mia"]) and math.isfinite(metrics["test_mia"])


def test_healthy_model_is_not_flagged():
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    metrics = evaluate.evaluate(net, four_splits())
    assert metrics["diverged"] is False and metrics["nonfinite_fraction"] == 0.0
    assert math.isfinite(metrics["test_mia"])


def test_reference_with_non_finite_weights_fails_naming_the_tensor():
    from unlearnbench.jobs.reference import check_finite_weights

    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    check_finite_weights(net, "a healthy net")  # no error
    with torch.no_grad():
        net[2].weight[0, 1] = float("nan")
    with pytest.raises(FloatingPointError, match=r"2\.weight") as err:
        check_finite_weights(net, "the original smallcnn of seed 0")
    assert "0.weight" not in str(err.value) and "precision fp32" in str(err.value)


# --- metrics.csv and scores ---------------------------------------------------------------------

SETTINGS = (("digits", "smallcnn"), ("digits", "resnet18"))
METHODS = ["ft", "ga", "msg", "ct", "ff"]


def frame_with_diverged(**kwargs) -> pd.DataFrame:
    """Synthetic metrics where FF diverged completely on digits/resnet18 with a RetDev that
    would otherwise make it the best method (and, had its MIA been computed from constant
    losses, an Indisc of 1)."""
    return synthetic_metrics(settings=SETTINGS, seeds=(0, 1, 2), methods=METHODS, rng_seed=5,
                             diverged=[("digits", "resnet18", "ff")], **kwargs)


def test_collect_metrics_keeps_the_flags(tmp_path):
    paths = []
    for method, flags in (("ft", {"diverged": False, "nonfinite_fraction": 0.0, "val_mia": 0.5, "test_mia": 0.5}),
                          ("ff", {"diverged": True, "nonfinite_fraction": 0.25, "val_mia": math.nan,
                                  "test_mia": math.nan})):
        path = tmp_path / "digits" / "smallcnn" / "metrics" / method / "seed0.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"retain_acc": 0.9, "forget_acc": 0.8, "val_acc": 0.8, "test_acc": 0.8,
                                    "seconds": 1.0, "hp_source": "search", "device": "cpu", "precision": "fp32",
                                    **flags}))
        paths.append(path)
    frame = scores.collect_metrics(paths, tmp_path / "metrics.csv")
    back = scores.read_metrics(tmp_path / "metrics.csv")
    for f in (frame, back):
        got = f.set_index("method")
        assert bool(got.loc["ff", "diverged"]) and not bool(got.loc["ft", "diverged"])
        assert got.loc["ff", "nonfinite_fraction"] == 0.25 and math.isnan(got.loc["ff", "test_mia"])


def test_summary_gives_no_indisc_to_a_method_that_diverged_on_one_seed():
    frame = frame_with_diverged()
    row = (frame["dataset"] == "digits") & (frame["model"] == "smallcnn") & (frame["method"] == "ga")
    first = row & (frame["seed"] == 0)
    frame.loc[first, ["test_mia", "val_mia"]] = np.nan
    frame.loc[first, ["diverged", "nonfinite_fraction"]] = [True, 0.5]
    table = scores.summary(frame).set_index(["dataset", "model", "method"])
    ga = table.loc["digits", "smallcnn", "ga"]
    assert math.isnan(ga["Indisc_mean"]) and math.isnan(ga["test_MIA_mean"])  # not a mean over seeds 1, 2
    assert ga["diverged"] and ga["diverged_seeds"] == 1 and ga["nonfinite_fraction"] == pytest.approx(0.5 / 3)
    ft = table.loc["digits", "smallcnn", "ft"]
    assert not ft["diverged"] and ft["diverged_seeds"] == 0 and math.isfinite(ft["Indisc_mean"])


def best_retdev_summary() -> pd.DataFrame:
    """Hand-made summary: two diverged methods with the best RetDev values."""
    rows = [("a", 0.10, 0.9, False), ("b", 0.20, 0.8, False), ("c", 0.30, 0.7, False),
            ("x", 0.02, np.nan, True), ("y", 0.01, np.nan, True)]
    return pd.DataFrame([{"dataset": "d", "model": "m", "method": m, "RetDev_mean": r, "Indisc_mean": i,
                          "diverged": dv} for m, r, i, dv in rows])


def test_diverged_methods_rank_below_every_other_and_among_themselves_by_retdev():
    ranks = scores.rankings(best_retdev_summary()).set_index("method")["rank"]
    assert ranks.to_dict() == {"a": 1, "b": 2, "c": 3, "y": 4, "x": 5}
    # equal RetDev at 3 decimals among diverged methods: they share their positions
    tied = best_retdev_summary().assign(RetDev_mean=lambda f: f["RetDev_mean"].where(~f["diverged"], 0.0501))
    assert scores.rankings(tied).set_index("method")["rank"][["x", "y"]].tolist() == [4.5, 4.5]


def test_rankings_and_critical_difference_put_the_diverged_method_last(tmp_path):
    frame = frame_with_diverged()
    # FF's accuracies equal to the retrained model's: RetDev 0, the best, were it not diverged
    ref = frame[frame["method"] == "retrained"].set_index(["dataset", "model", "seed"])
    ff = frame["method"] == "ff"
    for col in ("retain_acc", "forget_acc", "val_acc", "test_acc"):
        frame.loc[ff, col] = [ref.loc[(d, m, s), col] for d, m, s in frame.loc[ff, ["dataset", "model", "seed"]]
                              .itertuples(index=False)]
    path = tmp_path / "metrics.csv"
    frame.to_csv(path, index=False)
    ranks, means = tables.rankings_tables(path)
    ff_rank = ranks.set_index(["dataset", "model", "method"]).loc[("digits", "resnet18", "ff")]
    assert ff_rank["rank"] == len(METHODS) and ff_rank["diverged"]
    assert ff_rank["seed_rank_mean"] == len(METHODS)  # seed by seed too
    assert ranks.set_index(["dataset", "model", "method"]).loc[("digits", "smallcnn", "ff"), "rank"] == 1
    cd, cd_seeds = critical_difference.cd_analyses(path)
    matrix = scores.rank_matrix(scores.rankings(scores.summary(scores.read_metrics(path))))
    assert matrix.loc["digits/resnet18", "ff"] == len(METHODS)
    assert cd["table"].set_index("method").loc["ff", "diverged_blocks"] == 1
    assert cd_seeds["table"].set_index("method").loc["ff", "diverged_blocks"] == 3
    tables.write_rankings_table(path, tmp_path / "r.csv", tmp_path / "m.csv", tmp_path / "r.md", tmp_path / "r.tex")
    md = (tmp_path / "r.md").read_text()
    ff_line = next(line for line in md.splitlines() if line.startswith("| FF"))
    assert "diverged" in ff_line and "**5" not in ff_line


def main_table(tmp_path, frame):
    path = tmp_path / "metrics.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "main"
    table = tables.write_main_table(path, out.with_suffix(".csv"), out.with_suffix(".md"), out.with_suffix(".tex"))
    return table, out.with_suffix(".md").read_text()


def block_lines(md: str, setting: str) -> list[str]:
    block = md.split(f"## {setting}")[1].split("##")[0]
    return [line for line in block.splitlines() if line.startswith("| ") and not line.startswith("| Method")]


def test_main_table_prints_diverged_never_bold_and_last(tmp_path):
    table, md = main_table(tmp_path, frame_with_diverged())
    lines = block_lines(md, "digits / resnet18")
    assert lines[-1].startswith("| FF (diverged 3/3)")  # last of its block
    cells = [c.strip() for c in lines[-1].strip("|").split("|")]
    assert cells[8] == "diverged" and cells[9] == "diverged"  # Indisc, test MIA
    assert "**" not in lines[-1]
    assert "on k of n seeds the model gave non-finite outputs" in md
    # the best Indisc of the block is bold on a method that did not diverge
    bold = [line for line in lines if "**" in line.split("|")[9]]
    assert bold and not any("FF" in line for line in bold)
    row = table.set_index(["dataset", "model", "method"]).loc[("digits", "resnet18", "ff")]
    assert row["diverged"] and row["diverged_seeds"] == 3 and math.isnan(row["Indisc_mean"])
    # a setting where FF did not diverge is unmarked
    assert not any("diverged" in line for line in block_lines(md, "digits / smallcnn"))


def test_rte_table_never_marks_a_diverged_method_fastest(tmp_path):
    frame = frame_with_diverged()
    frame.loc[(frame["method"] == "ff") & (frame["model"] == "resnet18"), "seconds"] = 1e-3  # by far the fastest
    path = tmp_path / "metrics.csv"
    frame.to_csv(path, index=False)
    tables.write_rte_table(path, tmp_path / "rte.csv", tmp_path / "rte.md", tmp_path / "rte.tex")
    md = (tmp_path / "rte.md").read_text()
    ff_line = next(line for line in md.splitlines() if line.startswith("| FF"))
    assert "diverged" in ff_line and "**" not in ff_line.split("|")[3]


def test_retention_figure_puts_diverged_models_below_every_other(tmp_path):
    table, _ = main_table(tmp_path, frame_with_diverged())
    points = figures.retention_points(table)
    div = points["diverged"]
    assert div.sum() == 1 and (points.loc[div, "y"] < points.loc[~div, "y"].min()).all()
    assert (points.loc[~div, "y"] >= 0).all()
    figures.retention_vs_indiscernibility(tmp_path / "main.csv", tmp_path / "r.png", tmp_path / "r.pdf")
    assert (tmp_path / "r.png").stat().st_size > 0


def test_retention_figure_notes_an_infinite_retdev(tmp_path, monkeypatch):
    """RetDev is infinite where the retrained model's FA is 0 and a method's is not (a
    model at chance on a tiny fixture): the figure is drawn, that point named in a note."""
    table, _ = main_table(tmp_path, frame_with_diverged())
    table.loc[table["method"] == "ft", "RetDev_mean"] = np.inf
    table.to_csv(tmp_path / "main.csv", index=False)
    drawn = []
    monkeypatch.setattr(figures, "save", lambda fig, png, pdf: drawn.append(fig))
    figures.retention_vs_indiscernibility(tmp_path / "main.csv", tmp_path / "r.png", tmp_path / "r.pdf")
    notes = [t.get_text() for ax in drawn[0].axes for t in ax.texts]
    assert any(n.startswith("RetDev infinite, not drawn: FT") for n in notes)


def test_when_every_method_diverged_no_table_has_a_bold_value(tmp_path):
    """With every method diverged, rankings.md bolded the smallest mean
    rank. A diverged value is never bold, whatever the others are: main, RTE, rankings
    and critical-difference tables, the rankings' column of the paper's 18 included
    (SSD, beyond the 18, adds it)."""
    names = [*METHODS, "ssd"]
    every = [(d, m, method) for d, m in SETTINGS for method in names]
    frame = synthetic_metrics(settings=SETTINGS, seeds=(0, 1, 2), methods=names, rng_seed=5, diverged=every)
    path = tmp_path / "metrics.csv"
    frame.to_csv(path, index=False)
    tables.write_main_table(path, tmp_path / "main.csv", tmp_path / "main.md", tmp_path / "main.tex")
    tables.write_rte_table(path, tmp_path / "rte.csv", tmp_path / "rte.md", tmp_path / "rte.tex")
    tables.write_rankings_table(path, tmp_path / "r.csv", tmp_path / "m.csv", tmp_path / "r.md", tmp_path / "r.tex")
    critical_difference.write_cd_table(path, tmp_path / "cd.csv", tmp_path / "p.csv", tmp_path / "cd.md",
                                       tmp_path / "cd.tex")
    for name in ("main", "rte", "r", "cd"):
        text = (tmp_path / f"{name}.md").read_text()
        rows = [line for line in text.splitlines() if line.startswith("| ")]
        assert rows and not any("**" in line for line in rows), (name, [r for r in rows if "**" in r][:2])
        assert "textbf" not in (tmp_path / f"{name}.tex").read_text(), name
    assert "paper" in (tmp_path / "r.md").read_text().lower()  # the column of the paper's 18 is there
