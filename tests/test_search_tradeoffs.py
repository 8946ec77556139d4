"""What the search found: Pareto fronts, the chosen trial, sensitivity and importances
from per-trial CSVs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from unlearnbench import io, search
from unlearnbench.report import search_tradeoffs


def _trials(rng, n, lr_matters=True):
    rows = []
    for i in range(n):
        lr = float(10 ** rng.uniform(-5, -1))
        gaps = rng.uniform(0, 0.05, 4)
        if lr_matters:
            gaps[:3] += 0.1 * (np.log10(lr) + 5) / 4  # the norm grows with lr, whatever the rest
        rows.append({"number": i, "state": "COMPLETE", "params_lr": lr,
                     "params_weight_decay": float(10 ** rng.uniform(-5, -1)),
                     "params_batch_size": int(rng.choice([64, 128, 256])), "params_epochs": int(rng.integers(1, 3)),
                     **dict(zip(search.OBJECTIVES, gaps)), "norm": float(np.linalg.norm(gaps))})
    rows.append({"number": n, "state": "FAIL", **dict.fromkeys(search.OBJECTIVES, np.nan)})
    return pd.DataFrame(rows)


def _write(tmp_path, method, frame):
    base = tmp_path / "results/digits/smallcnn/search" / method
    base.mkdir(parents=True)
    frame.to_csv(base / "seed0.csv", index=False)
    best = search.select_best({0: search.read_trials(base / "seed0.csv")}, method)
    io.write_json(base / "best.json", best)
    return base / "seed0.csv", base / "best.json"


def _brute_force_front(values):
    front = []
    for i, v in enumerate(values):
        dominated = any(np.all(w <= v) and np.any(w < v) for j, w in enumerate(values) if j != i)
        front.append(not dominated)
    return np.array(front)


def test_front_chosen_trial_spread_and_importances(tmp_path):
    rng = np.random.default_rng(0)
    ft_csv, ft_best = _write(tmp_path, "ft", _trials(rng, 30))
    ga_csv, ga_best = _write(tmp_path, "ga", _trials(rng, 3, lr_matters=False))
    table, trials = search_tradeoffs.search_tradeoffs([ft_csv, ga_csv], [ft_best, ga_best], {"digits": 2}, True)
    table = table.set_index("method")
    for method in ("ft", "ga"):
        t = trials[trials["method"] == method]
        assert t["pareto"].tolist() == _brute_force_front(t[list(search.OBJECTIVES)].to_numpy()).tolist()
        assert t["chosen"].sum() == 1 and t.loc[t["chosen"], "pareto"].all()  # the smallest norm is on the front
        assert table.loc[method, "chosen_norm"] == t["norm"].min()
        assert table.loc[method, "norm_spread"] == t["norm"].max() - t["norm"].min()
        assert table.loc[method, "failed"] == 1
    assert table.loc["ft", "complete"] == 30 and table.loc["ga", "complete"] == 3
    imp = json.loads(table.loc["ft", "importances"])
    assert max(imp, key=imp.get) == "lr"  # the only parameter the norm depends on
    assert table.loc["ga", "importances"].startswith("n/a (3 < 10")
    first = trials[(trials["method"] == "ft") & (trials["number"] == 0)]
    assert table.loc["ft", "defaults_norm"] == first["norm"].iloc[0]


def test_table_and_figure_files(tmp_path):
    rng = np.random.default_rng(1)
    paths = [_write(tmp_path, m, _trials(rng, 3)) for m in ("ft", "ga", "scrub")]
    csvs, bests = [p[0] for p in paths], [p[1] for p in paths]
    search_tradeoffs.write_table(csvs, bests, tmp_path / "t.csv", tmp_path / "t.md", {"digits": 2}, True)
    md = (tmp_path / "t.md").read_text()
    assert "## digits / smallcnn" in md and "SCRUB" in md and "n/a (3 < 10 trials)" in md
    search_tradeoffs.write_figures(csvs, bests, [tmp_path / "f.png"], [tmp_path / "f.pdf"], [("digits", "smallcnn")],
                                   {"digits": 2}, True)
    assert (tmp_path / "f.png").stat().st_size > 10000 and (tmp_path / "f.pdf").stat().st_size > 0
