"""Scores of PAPER.md §4 from results/metrics.csv (pandas).

Point estimates follow the paper: retention ratios are ratios of means over seeds
(RR = mean RA_u / mean RA_R, likewise FR, TR), RetDev = |RR-1| + |FR-1| + |TR-1|,
RTE = mean retraining seconds / mean unlearning seconds, Indisc = mean over seeds of
1 - |2 MIA_test - 1|. Spreads (± std, confidence intervals) come from the same
quantities computed per seed, each seed against the retrained model of that seed.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from . import io

KEYS = ["dataset", "model", "method", "seed"]
METRIC_COLUMNS = ["retain_acc", "forget_acc", "val_acc", "test_acc", "val_mia", "test_mia", "seconds"]
SCORES = ["RA", "FA", "TA", "RR", "FR", "TR", "RetDev", "Indisc", "test_MIA", "RTE"]
_PATH = re.compile(r"(?P<dataset>[^/]+)/(?P<model>[^/]+)/metrics/(?P<method>[^/]+)/seed(?P<seed>\d+)\.json$")


def collect_metrics(paths, out) -> pd.DataFrame:
    """One row per (dataset, model, method, seed) from the per-model metrics JSONs."""
    rows = []
    for path in paths:
        match = _PATH.search(Path(path).as_posix())
        if not match:
            raise ValueError(f"not a metrics path: {path}")
        values = io.read_json(path)
        missing = [c for c in METRIC_COLUMNS if c not in values]
        if missing:
            raise io.CorruptFileError(f"{path} lacks {', '.join(missing)}")
        rows.append({**match.groupdict(), **{c: values[c] for c in METRIC_COLUMNS}})
    frame = pd.DataFrame(rows, columns=KEYS + METRIC_COLUMNS)
    frame["seed"] = frame["seed"].astype(int)
    frame = frame.sort_values(KEYS, kind="stable").reset_index(drop=True)
    with io.atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g")
    return frame


def read_metrics(path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    missing = [c for c in KEYS + METRIC_COLUMNS if c not in frame.columns]
    if missing:
        raise io.CorruptFileError(f"{path} lacks column(s) {', '.join(missing)}")
    return frame


def indiscernibility(mia):
    return 1.0 - np.abs(2.0 * np.asarray(mia) - 1.0)


def per_seed(frame: pd.DataFrame) -> pd.DataFrame:
    """Each seed's scores against the retrained model of the same (dataset, model, seed)."""
    ref = frame[frame["method"] == "retrained"].set_index(["dataset", "model", "seed"])
    ref = ref[["retain_acc", "forget_acc", "test_acc", "seconds"]].add_suffix("_R")
    out = frame.join(ref, on=["dataset", "model", "seed"])
    if out["retain_acc_R"].isna().any():
        lacking = out.loc[out["retain_acc_R"].isna(), ["dataset", "model", "seed"]].drop_duplicates()
        raise ValueError(f"no retrained model for {lacking.to_dict('records')}")
    out["RA"], out["FA"], out["TA"] = out["retain_acc"], out["forget_acc"], out["test_acc"]
    out["RR"] = out["retain_acc"] / out["retain_acc_R"]
    out["FR"] = out["forget_acc"] / out["forget_acc_R"]
    out["TR"] = out["test_acc"] / out["test_acc_R"]
    out["RetDev"] = (out["RR"] - 1).abs() + (out["FR"] - 1).abs() + (out["TR"] - 1).abs()
    out["Indisc"] = indiscernibility(out["test_mia"])
    out["test_MIA"] = out["test_mia"]
    out["RTE"] = out["seconds_R"] / out["seconds"]
    out.loc[out["method"] == "original", "RTE"] = np.nan  # nothing was unlearned
    return out


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model, method): mean and std over seeds of every score in SCORES."""
    seeds = per_seed(frame)
    groups = seeds.groupby(["dataset", "model", "method"], sort=False)
    means = groups[["retain_acc", "forget_acc", "test_acc", "seconds", "retain_acc_R", "forget_acc_R",
                    "test_acc_R", "seconds_R", "Indisc", "test_MIA"]].mean()
    point = pd.DataFrame(index=means.index)
    point["RA"], point["FA"], point["TA"] = means["retain_acc"], means["forget_acc"], means["test_acc"]
    point["RR"] = means["retain_acc"] / means["retain_acc_R"]
    point["FR"] = means["forget_acc"] / means["forget_acc_R"]
    point["TR"] = means["test_acc"] / means["test_acc_R"]
    point["RetDev"] = (point["RR"] - 1).abs() + (point["FR"] - 1).abs() + (point["TR"] - 1).abs()
    point["Indisc"] = means["Indisc"]
    point["test_MIA"] = means["test_MIA"]
    point["RTE"] = means["seconds_R"] / means["seconds"]
    point.loc[point.index.get_level_values("method") == "original", "RTE"] = np.nan
    spread = groups[SCORES].std(ddof=1)
    out = point.add_suffix("_mean").join(spread.add_suffix("_std"))
    out["n_seeds"] = groups.size()
    return out.reset_index()
