"""Tables, figures, statistics and the report.

The main table is checked against docs/protocol.md §4 recomputed here from metrics.csv with
plain loops (not scores.summary); rankings, confidence intervals and the
critical-difference test against hand-made numbers; the workflow test builds every
table and figure from a synthetic results/metrics.csv in a copy of the workflow and
checks that only report rules run.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from unlearnbench import allocator, scores
from unlearnbench.report import critical_difference, formatting, gallery, tables

from oracles import confidence_interval
from synthetic import synthetic_metrics

REPO = Path(__file__).resolve().parents[1]
SOME_METHODS = ["ft", "ga", "srl", "ngplus", "msg", "ct"]

TABLE_RULES = {
    "table_main": ["results/tables/main.csv", "results/tables/main.md", "results/tables/main.tex"],
    "table_rte": ["results/tables/rte.csv", "results/tables/rte.md", "results/tables/rte.tex"],
    "table_rankings": ["results/tables/rankings.csv", "results/tables/mean_ranks.csv",
                       "results/tables/rankings.md", "results/tables/rankings.tex"],
    "table_critical_difference": ["results/tables/critical_difference.csv", "results/tables/nemenyi_pvalues.csv",
                                  "results/tables/critical_difference.md",
                                  "results/tables/critical_difference.tex"],
}
FIGURE_RULES = {
    "figure_retention": ("retention_vs_indiscernibility", {"table_main"}),
    "figure_rte": ("rte", {"table_rte"}),
    "figure_rank_heatmap": ("rank_heatmap", {"table_rankings"}),
    "figure_seed_spread": ("seed_spread", set()),
    "figure_critical_difference": ("critical_difference", {"table_critical_difference"}),
}
REPORT_RULES = set(TABLE_RULES) | set(FIGURE_RULES)


@pytest.fixture(scope="module")
def metrics_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("metrics") / "metrics.csv"
    synthetic_metrics(settings=(("cifar10", "resnet18"), ("mnist", "resnet18"), ("cifar10", "tinyvit11m")),
                      seeds=(0, 1, 2, 3), methods=SOME_METHODS, rng_seed=3).to_csv(path, index=False)
    return path


# --- the main table against docs/protocol.md §4 ------------------------------------------------------

def paper_scores(frame: pd.DataFrame) -> dict:
    """docs/protocol.md §4, written out: ratios of means over seeds against the retrained model."""
    out = {}
    for (dataset, model), block in frame.groupby(["dataset", "model"]):
        ref = block[block["method"] == "retrained"]
        ra_r, fa_r, ta_r = ref["retain_acc"].mean(), ref["forget_acc"].mean(), ref["test_acc"].mean()
        seconds_r = ref["seconds"].mean()
        for method, rows in block.groupby("method"):
            rr = rows["retain_acc"].mean() / ra_r
            fr = rows["forget_acc"].mean() / fa_r
            tr = rows["test_acc"].mean() / ta_r
            indisc = np.mean([1 - abs(2 * mia - 1) for mia in rows["test_mia"]])
            rte = seconds_r / rows["seconds"].mean() if method != "original" else math.nan
            out[dataset, model, method] = {"RR": rr, "FR": fr, "TR": tr,
                                           "RetDev": abs(rr - 1) + abs(fr - 1) + abs(tr - 1),
                                           "Indisc": indisc, "RTE": rte}
    return out


def test_main_table_recomputes_from_metrics(metrics_csv, tmp_path):
    tables.write_main_table(metrics_csv, tmp_path / "main.csv", tmp_path / "main.md", tmp_path / "main.tex")
    table = pd.read_csv(tmp_path / "main.csv")
    expected = paper_scores(pd.read_csv(metrics_csv))
    assert len(table) == len(expected)
    for _, row in table.iterrows():
        want = expected[row["dataset"], row["model"], row["method"]]
        for score, value in want.items():
            got = row[f"{score}_mean"]
            assert (math.isnan(value) and math.isnan(got)) or got == pytest.approx(value, rel=1e-5), \
                (row["method"], score)
    # the Markdown prints the same numbers (3 decimals, RTE 1), each with its interval
    md = (tmp_path / "main.md").read_text()
    block = md.split("## cifar10 / resnet18")[1].split("## ")[0]
    msg = next(line for line in block.splitlines() if line.startswith("| MSG"))
    want = expected["cifar10", "resnet18", "msg"]
    assert f"{want['RetDev']:.3f} ± " in msg and f"{want['Indisc']:.3f} ± " in msg and f"{want['RTE']:.1f} ± " in msg
    tex = (tmp_path / "main.tex").read_text()
    assert r"\begin{tabular}" in tex and r"$\pm$" in tex and "cifar10 / resnet18" in tex
    widths = {line.count(" & ") for line in tex.splitlines() if line.endswith(r"\\") and " & " in line}
    assert len(widths) == 1  # every row has as many cells as the header


def test_main_table_confidence_intervals(metrics_csv):
    frame = pd.read_csv(metrics_csv)
    table = scores.summary(frame).set_index(["dataset", "model", "method"])
    rows = frame[(frame["dataset"] == "mnist") & (frame["method"].isin(["ct", "retrained"]))]
    ct = rows[rows["method"] == "ct"].set_index("seed")
    ref = rows[rows["method"] == "retrained"].set_index("seed")
    per_seed = ((ct["retain_acc"] / ref["retain_acc"] - 1).abs() + (ct["forget_acc"] / ref["forget_acc"] - 1).abs()
                + (ct["test_acc"] / ref["test_acc"] - 1).abs())
    n = len(per_seed)
    half = 3.182446305284263 * per_seed.std(ddof=1) / math.sqrt(n)  # t_{0.975, 3}
    entry = table.loc["mnist", "resnet18", "ct"]
    assert entry["RetDev_ci"] == pytest.approx(half, rel=1e-6)
    assert entry["RetDev_ci_high"] == pytest.approx(entry["RetDev_mean"] + half, rel=1e-6)
    assert entry["n_seeds"] == n
    # accuracies and Indisc: exact t-interval of the mean, clipped to [0, 1]
    ind = 1 - (2 * ct["test_mia"] - 1).abs()
    low, high = confidence_interval(ind)
    assert entry["Indisc_ci_low"] == pytest.approx(max(low, 0))
    assert entry["Indisc_ci_high"] == pytest.approx(min(high, 1))


def test_confidence_interval_known_numbers():
    # mean 3, s = sqrt(2.5), t_{0.975, 4} = 2.7764451
    assert scores.ci_halfwidth([1, 2, 3, 4, 5]) == pytest.approx(2.7764451 * math.sqrt(2.5) / math.sqrt(5))
    assert confidence_interval([1, 2, 3, 4, 5]) == pytest.approx((3 - 1.963243, 3 + 1.963243), abs=1e-6)
    assert scores.ci_halfwidth([2.0, 2.0, 2.0]) == 0.0
    assert math.isnan(scores.ci_halfwidth([1.0]))
    assert math.isnan(scores.ci_halfwidth([]))
    assert scores.ci_halfwidth([1, 2, 3, 4, 5], level=0.99) > scores.ci_halfwidth([1, 2, 3, 4, 5])
    assert formatting.point_ci(0.01234, 0.00567, 3) == "0.012 ± 0.006"
    assert formatting.point_ci(0.5, float("nan"), 2) == "0.50"
    assert formatting.point_ci(float("nan"), 0.1) == "–"
    assert formatting.tex_escape("p < 0.001 ± 5 % a_b") == r"p $<$ 0.001 $\pm$ 5 \% a\_b"


# --- rankings ------------------------------------------------------------------------------

def hand_made_summary() -> pd.DataFrame:
    rows = [
        # setting 1: RetDev order d < {b, c} < a < e; b and c equal at 3 decimals -> higher Indisc (c) first
        ("cifar10", "resnet18", "a", 0.100, 0.90), ("cifar10", "resnet18", "b", 0.0502, 0.80),
        ("cifar10", "resnet18", "c", 0.0504, 0.95), ("cifar10", "resnet18", "d", 0.020, 0.50),
        ("cifar10", "resnet18", "e", 0.300, 0.99),
        ("cifar10", "resnet18", "retrained", 0.0, 0.99), ("cifar10", "resnet18", "original", 0.04, 0.9),
        # setting 2: a and b tie exactly on both -> share rank 1.5
        ("mnist", "resnet18", "a", 0.010, 0.97), ("mnist", "resnet18", "b", 0.010, 0.97),
        ("mnist", "resnet18", "c", 0.200, 0.99), ("mnist", "resnet18", "d", 0.050, 0.90),
        ("mnist", "resnet18", "e", 0.050, 0.95),
        # setting 3: another model
        ("cifar10", "smallcnn", "a", 0.030, 0.9), ("cifar10", "smallcnn", "b", 0.020, 0.9),
        ("cifar10", "smallcnn", "c", 0.010, 0.9), ("cifar10", "smallcnn", "d", 0.040, 0.9),
        ("cifar10", "smallcnn", "e", 0.050, 0.9),
    ]
    return pd.DataFrame(rows, columns=["dataset", "model", "method", "RetDev_mean", "Indisc_mean"])


def test_rankings_known_order_with_indisc_tie_break():
    ranks = scores.rankings(hand_made_summary())
    assert not ranks["method"].isin(["original", "retrained"]).any()
    got = {(d, m, k): r for d, m, k, r in ranks[["dataset", "model", "method", "rank"]].itertuples(index=False)}
    assert [got["cifar10", "resnet18", k] for k in "dcbae"] == [1, 2, 3, 4, 5]
    assert [got["mnist", "resnet18", k] for k in "abedc"] == [1.5, 1.5, 3, 4, 5]
    assert [got["cifar10", "smallcnn", k] for k in "cbade"] == [1, 2, 3, 4, 5]
    # without rounding, b (0.0502) is simply ahead of c (0.0504)
    frame = hand_made_summary().query("dataset == 'cifar10' and model == 'resnet18'")
    raw = scores.rank(frame, ["dataset", "model"], decimals=None)
    assert raw[frame["method"] == "b"].item() < raw[frame["method"] == "c"].item()

    means = scores.mean_ranks(ranks).set_index("method")
    assert means.loc["a", "mean_rank_resnet18"] == pytest.approx((4 + 1.5) / 2)
    assert means.loc["a", "mean_rank_smallcnn"] == 3
    assert means.loc["a", "mean_rank"] == pytest.approx((4 + 1.5 + 3) / 3)
    assert means.loc["a", "ci"] == pytest.approx(scores.ci_halfwidth([4, 1.5, 3]))
    assert list(means.index) == list(means.sort_values("mean_rank", kind="stable").index)


def test_rankings_table_files(tmp_path, metrics_csv):
    tables.write_rankings_table(metrics_csv, tmp_path / "r.csv", tmp_path / "m.csv", tmp_path / "r.md",
                                tmp_path / "r.tex")
    ranks = pd.read_csv(tmp_path / "r.csv")
    assert set(ranks["method"]) == set(SOME_METHODS)
    assert (ranks.groupby(["dataset", "model"])["rank"].apply(sorted).map(list)
            == [list(map(float, range(1, len(SOME_METHODS) + 1)))] * 3).all()
    assert ranks["seed_rank_ci"].notna().all() and (ranks["n_seeds"] == 4).all()
    md = (tmp_path / "r.md").read_text()
    assert "mean rank resnet18" in md and "mean rank tinyvit11m" in md and "mean rank (all)" in md


# --- critical difference -------------------------------------------------------------------

def test_critical_difference_known_example():
    # 10 blocks, always msg < ct < ga: Friedman chi2 = 12N/(k(k+1)) sum R^2 - 3N(k+1) = 20
    matrix = pd.DataFrame({"msg": [1.0] * 10, "ct": [2.0] * 10, "ga": [3.0] * 10})
    cd = scores.critical_difference(matrix)
    assert cd["friedman_chi2"] == pytest.approx(20.0)
    assert cd["friedman_p"] == pytest.approx(math.exp(-10))  # chi2 with 2 dof
    assert cd["cd"] == pytest.approx(2.343 * math.sqrt(3 * 4 / 60), rel=1e-3)  # Demsar's q_0.05 for k = 3
    table = cd["table"].set_index("method")
    assert list(cd["table"]["method"]) == ["msg", "ct", "ga"]
    assert table.loc["msg", "top_group"] and table.loc["ct", "top_group"] and not table.loc["ga", "top_group"]
    assert cd["pvalues"].loc["msg", "ga"] < 0.05 < cd["pvalues"].loc["msg", "ct"]
    assert table.loc["msg", "beats"] == 1 and table.loc["ga", "beaten_by"] == 1
    verdicts = {c["claim"]: c["verdict"] for c in critical_difference.claims(cd)}
    # MSG and CT in a top group of 2 of 3 methods: most of the field, so only "not contradicted"
    assert next(v for k, v in verdicts.items() if "MSG and CT" in k).startswith("not contradicted")
    # too few blocks: nothing is testable, and the claim says so
    small = scores.critical_difference(matrix.iloc[:1])
    assert math.isnan(small["cd"]) and math.isnan(small["friedman_p"])
    assert critical_difference.claims(small)[0]["verdict"].startswith("not testable")


def test_critical_difference_table_files(tmp_path, metrics_csv):
    critical_difference.write_cd_table(metrics_csv, tmp_path / "cd.csv", tmp_path / "p.csv", tmp_path / "cd.md",
                          tmp_path / "cd.tex")
    table = pd.read_csv(tmp_path / "cd.csv")
    assert set(table["method"]) == set(SOME_METHODS) and (table["n_blocks"] == 3).all()
    pvalues = pd.read_csv(tmp_path / "p.csv", index_col=0)
    assert np.allclose(pvalues.to_numpy(), pvalues.to_numpy().T) and np.allclose(np.diag(pvalues), 1)
    md = (tmp_path / "cd.md").read_text()
    assert "PAPER claim 1" in md and "PAPER claim 2" in md and "Power" in md and "seeds as blocks" in md


def test_rte_table(tmp_path, metrics_csv):
    tables.write_rte_table(metrics_csv, tmp_path / "rte.csv", tmp_path / "rte.md", tmp_path / "rte.tex")
    long = pd.read_csv(tmp_path / "rte.csv")
    assert "original" not in set(long["method"])
    frame = pd.read_csv(metrics_csv)
    block = frame[(frame["dataset"] == "cifar10") & (frame["model"] == "tinyvit11m")]
    want = block.loc[block["method"] == "retrained", "seconds"].mean() / block.loc[block["method"] == "ga",
                                                                                    "seconds"].mean()
    row = long[(long["dataset"] == "cifar10") & (long["model"] == "tinyvit11m") & (long["method"] == "ga")]
    assert row["RTE_mean"].item() == pytest.approx(want, rel=1e-5)
    assert row["retrain_seconds"].item() == pytest.approx(block.loc[block["method"] == "retrained", "seconds"].mean())
    assert "## Unlearning seconds" in (tmp_path / "rte.md").read_text()


def test_gallery_downsizes_and_labels(tmp_path, metrics_csv):
    Image.new("RGB", (1800, 600), "white").save(tmp_path / "big.png")
    footer = gallery.describe_metrics(metrics_csv)
    assert "6 methods" in footer and "seeds 0-3" in footer
    gallery.make_gallery([tmp_path / "big.png"], [tmp_path / "small.png"], width=600, footer=footer)
    small = Image.open(tmp_path / "small.png")
    assert small.width == 600 and small.height > 200  # 200 px of figure plus the footer strip


# --- the workflow: every table and figure from metrics.csv alone -----------------------------

DRY_RUNS = textwrap.dedent("""
    import sys
    from snakemake.cli import main
    for target in sys.argv[1:]:
        print("@@target", target, flush=True)
        try:
            main([target, "--dry-run", "--cores", "1"])
        except SystemExit as exit:
            sys.stderr.flush()
            print("@@exit", exit.code, flush=True)
""")


def planned_rules(log: str) -> dict[str, set[str]]:
    """target -> the rules of the jobs a dry run plans (from the first 'Job stats' table
    after the target's marker; snakemake prints it to stdout in a dry run)."""
    plans = {}
    for chunk in log.split("@@target ")[1:]:
        target = chunk.split()[0]
        assert "@@exit 0" in chunk, chunk[-3000:]
        stats = chunk.split("Job stats:")[1].split("total")[0] if "Job stats:" in chunk else ""
        plans[target] = set(re.findall(r"^(\w+)\s+\d+\s*$", stats, flags=re.M))
    return plans


@pytest.mark.workflow
def test_each_table_and_figure_rebuilds_alone_from_metrics(tmp_path):
    work = tmp_path / "wf"
    work.mkdir()
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, work / name)
    for name in ("workflow", "profiles", "envs"):
        shutil.copytree(REPO / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    # the random scenario only: provenance records every scenario's split file, which the
    # default's other scenarios would build (data, U-LiRA bank) before it
    config = yaml.safe_load((work / "config.yaml").read_text())
    (work / "config.yaml").write_text(yaml.safe_dump({**config, "scenarios": [{"kind": "random"}]}))
    (work / "results").mkdir()
    synthetic_metrics(settings=(("digits", "smallcnn"), ("digits", "resnet18")), seeds=(0, 1, 2),
                      rng_seed=1).to_csv(work / "results/metrics.csv", index=False)
    targets = list(TABLE_RULES) + list(FIGURE_RULES)

    # 1. from metrics.csv alone, each target plans its own rule (and the table it draws) only
    script = tmp_path / "dry_runs.py"
    script.write_text(DRY_RUNS)
    proc = subprocess.run([sys.executable, str(script), *targets], cwd=work, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    plans = planned_rules(proc.stdout)
    for rule in TABLE_RULES:
        assert plans[rule] == {rule}, (rule, plans[rule])
    for rule, (_, needs) in FIGURE_RULES.items():
        assert plans[rule] == {rule} | needs, (rule, plans[rule])

    # 2. build them all (and the provenance record): only report rules run, every output
    # appears, nothing is retrained
    targets.append("provenance")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *targets], cwd=work,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-6000:]
    ran = set(re.findall(r"^(?:local)?rule (\w+):", proc.stderr, flags=re.M))
    assert ran == REPORT_RULES | {"provenance"}, ran
    record = json.loads((work / "results/provenance.json").read_text())
    assert record["packages"]["torch"] and record["config_sha256"] and "gpus" in record
    # the workflow set the jobs' malloc tunables (unlearnbench/allocator.py)
    assert set(allocator.TUNABLES.items()) <= {tuple(p.split("=", 1)) for p in record["glibc_tunables"].split(":")}
    for rule, outputs in TABLE_RULES.items():
        for output in outputs:
            assert (work / output).stat().st_size > 0, output
    for name, _ in FIGURE_RULES.values():
        for ext in ("png", "pdf"):
            assert (work / f"figures/{name}.{ext}").stat().st_size > 0
        with Image.open(work / f"figures/{name}.png") as image:
            assert image.width > 300 and image.height > 200
    assert not (work / "results/digits").exists()

    # 3. the HTML report collects every figure and table
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--report", "report.html", *targets], cwd=work,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-6000:]
    html = (work / "report.html").read_text(errors="replace")
    for name, _ in FIGURE_RULES.values():
        assert f"{name}.png" in html, name
    for table in ("main.csv", "rte.csv", "rankings.csv", "mean_ranks.csv", "critical_difference.csv",
                  "provenance.json"):
        assert table in html, table
