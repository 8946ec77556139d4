"""Scores of docs/protocol.md §4 from results/metrics.csv (pandas).

Point estimates follow the paper: retention ratios are ratios of means over seeds
(RR = mean RA_u / mean RA_R, likewise FR, TR), RetDev = |RR-1| + |FR-1| + |TR-1|,
RTE = mean retraining seconds / mean unlearning seconds, Indisc = mean over seeds of
1 - |2 MIA_test - 1|. Spreads (± std, confidence intervals) come from the same
quantities computed per seed, each seed against the retrained model of that seed.

Confidence intervals are t-based (Student t with n_seeds - 1 degrees of freedom,
`scipy.stats.t`): half-width h = t_{0.975, n-1} * s / sqrt(n), s the standard deviation
of the per-seed values. For the scores that are means over seeds (RA, FA, TA, Indisc,
test MIA, seconds) point ± h is the exact t-interval of the mean; for the ratio scores
(RR, FR, TR, RetDev, RTE), whose point estimate is the paper's ratio of means, the
same half-width is put around that point (a first-order approximation). Fewer than
two seeds give no interval (NaN).

Rankings (the paper's "rankings per architecture"): within each (dataset, model) the
unlearning methods (not the original and retrained references) are ordered by RetDev
(lower better); RetDev values equal at the tables' precision (3 decimals) are
ordered by Indisc (higher better); exact ties on both share the mean of their
positions. A diverged method (non-finite outputs on any seed, NaN Indisc) ranks below
every method that did not diverge; diverged methods are ordered among themselves by
RetDev (non-finite outputs count as wrong predictions), and equal RetDev at 3 decimals
share the mean of their positions. Mean ranks are averaged over datasets per model and over all settings.
`critical_difference` runs a Friedman test over settings and Nemenyi's post-hoc test
on those ranks (Demšar 2006), scikit-posthocs for the pairwise p-values.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from . import REFERENCES, io, scenarios
from .attacks.registry import attack_columns, resolve, table_scores

KEYS = ["dataset", "model", "method", "seed"]
# accuracies, every per-model attack's columns (attacks/registry.py MODEL_ATTACKS: the
# val and test population MIA first), seconds
ACCURACY_COLUMNS = ["retain_acc", "forget_acc", "val_acc", "test_acc"]
METRIC_COLUMNS = ACCURACY_COLUMNS + attack_columns() + ["seconds"]
# Flags kept beside the numbers (README, "Flags"): a model with non-finite outputs
# (`diverged`, `nonfinite_fraction` of its evaluated rows) has NaN MIAs; `hp_source` says
# where its hyperparameters came from (HP_SOURCES); `device` and `precision` are what
# its job resolved `device` and `precision: auto` to.
FLAG_COLUMNS = ["diverged", "nonfinite_fraction", "hp_source", "device", "precision"]
# A method not defined for the run's scenario (methods.applies) has no job: the collection
# writes its rows with NaN metrics, `applicable` False and the reason; tables print them
# as "n/a", rankings, critical difference and figures leave them out (read_metrics).
APPLICABILITY_COLUMNS = ["applicable", "na_reason"]
HP_SOURCES = {
    "recipe": "the training recipe (original and retrained references)",
    "search": "the search's chosen trial (over method_params, over the method defaults)",
    "config": "the method defaults updated with method_params (no search)",
    "defaults": "the method defaults after a search without a complete trial "
                "(search.on_no_complete_trial: defaults)",
}
# per (dataset, model, method): the distinct values over seeds, joined with "+"
JOINED_FLAGS = ["hp_source", "device", "precision"]
# the per-model attacks' scores (Indisc and test_MIA from the population MIA): means over
# seeds, NaN for a (dataset, model, method) with a diverged seed
ATTACK_SCORES = [s.name for s in table_scores()]
SCORES = ["RA", "FA", "TA", "RR", "FR", "TR", "RetDev", *ATTACK_SCORES, "RTE"]
SUMMARY_SCORES = SCORES + ["seconds"]
SETTING = ["dataset", "model"]
CI_LEVEL = 0.95
NONNEGATIVE = {"RA", "FA", "TA", "RR", "FR", "TR", "RetDev", "RTE", "seconds",
               *(s.name for s in table_scores() if s.unit_interval)}
AT_MOST_ONE = {"RA", "FA", "TA", *(s.name for s in table_scores() if s.unit_interval)}
RANK_DECIMALS = 3
# Scenarios (docs/protocol.md §10): `scenario` names the forgetting scenario (random = the
# main benchmark, under results/{dataset}/; the others under results/scenarios/{scenario}/),
# then its success metrics (NaN where a scenario has none) and `hp_scenario` (whose
# hyperparameters it used).
SUCCESS_COLUMNS = list(scenarios.SUCCESS_COLUMNS)
SCENARIO_COLUMNS = SUCCESS_COLUMNS + ["hp_scenario"]
_PATH = re.compile(r"(?:scenarios/(?P<scenario>[^/]+)/)?(?P<dataset>[^/]+)/(?P<model>[^/]+)/metrics/"
                   r"(?P<method>[^/]+)/seed(?P<seed>\d+)\.json$")


def collect_metrics(paths, out, not_applicable=()) -> pd.DataFrame:
    """One row per (dataset, model, method, seed) from the per-model metrics JSONs, and
    one per entry of `not_applicable`, a (dataset, model, method, seed, reason) for a
    method that does not apply to the scenario: NaN metrics, `applicable` False."""
    rows = [{"scenario": "random", "dataset": d, "model": m, "method": method, "seed": str(seed),
             "diverged": False, "applicable": False, "na_reason": reason, "hp_scenario": "random"}
            for d, m, method, seed, reason in not_applicable]
    for path in paths:
        match = _PATH.search(Path(path).as_posix())
        if not match:
            raise ValueError(f"not a metrics path: {path}")
        values = io.read_json(path)
        missing = [c for c in METRIC_COLUMNS + FLAG_COLUMNS if c not in values]
        if missing:
            raise io.CorruptFileError(f"{path} lacks {', '.join(missing)} (written by an older version? "
                                      "rerun the job that wrote it)")
        keys = {**match.groupdict(), "scenario": match["scenario"] or "random"}
        applicable = bool(values.get("applicable", True))  # a scenario job's n/a JSON says False
        rows.append({**keys, **{c: values[c] for c in METRIC_COLUMNS + FLAG_COLUMNS},
                     **{c: values.get(c) for c in SUCCESS_COLUMNS}, "applicable": applicable,
                     "na_reason": "" if applicable else values.get("na_reason", ""),
                     "hp_scenario": values.get("hp_scenario", keys["scenario"])})
    rows = _check_not_applicable(rows)
    columns = ["scenario"] + KEYS + METRIC_COLUMNS + FLAG_COLUMNS + APPLICABILITY_COLUMNS + SCENARIO_COLUMNS
    frame = pd.DataFrame(rows, columns=columns)
    frame["seed"] = frame["seed"].astype(int)
    clash = frame[frame.duplicated(["scenario"] + KEYS, keep=False)]
    if len(clash):
        which = clash[["scenario"] + KEYS].drop_duplicates().to_dict("records")
        raise ValueError(f"two metrics rows for {which} (a method run although not applicable?)")
    frame["diverged"] = frame["diverged"].astype(bool)
    frame["applicable"] = frame["applicable"].astype(bool)
    numbers = METRIC_COLUMNS + ["nonfinite_fraction"] + SUCCESS_COLUMNS
    frame[numbers] = frame[numbers].astype(float)  # null: no MIA, not applicable, not this scenario's
    frame = frame.sort_values(["scenario"] + KEYS, key=_random_first, kind="stable").reset_index(drop=True)
    with io.atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g")
    return frame


def _check_not_applicable(rows: list[dict]) -> list[dict]:
    empty = [r for r in rows if not r["applicable"] and not str(r["na_reason"]).strip()]
    if empty:
        raise ValueError(f"a not-applicable metrics row needs a reason: {empty[0]}")
    return rows


def _random_first(column: pd.Series) -> pd.Series:
    return column.map(lambda s: "" if s == "random" else s) if column.name == "scenario" else column


def read_metrics(path, applicable_only: bool = True, scenario: str | None = "random") -> pd.DataFrame:
    """results/metrics.csv's rows of one forgetting scenario (default: random, whose tables
    are the paper's; None: every scenario); by default without the rows of methods that do
    not apply to the scenario (`applicable` False: see `not_applicable`). A file without
    the `applicable` column (older) holds applicable rows only."""
    frame = pd.read_csv(path, keep_default_na=True)
    missing = [c for c in KEYS + METRIC_COLUMNS + FLAG_COLUMNS if c not in frame.columns]
    if missing:
        raise io.CorruptFileError(f"{path} lacks column(s) {', '.join(missing)}")
    frame["diverged"] = frame["diverged"].astype(bool)
    if "applicable" not in frame.columns:
        frame["applicable"], frame["na_reason"] = True, ""
    frame["applicable"] = frame["applicable"].astype(bool)
    frame["na_reason"] = frame["na_reason"].fillna("").astype(str)
    # rows without a scenario (a file from before the scenarios) are the random scenario's
    frame["scenario"] = frame["scenario"].fillna("random") if "scenario" in frame else "random"
    if scenario is not None:
        frame = frame[frame["scenario"] == scenario].reset_index(drop=True)
    return frame[frame["applicable"]].reset_index(drop=True) if applicable_only else frame


def not_applicable(path_or_frame) -> pd.DataFrame:
    """Per (dataset, model, method) that does not apply: its `na_reason`, one row each."""
    frame = (read_metrics(path_or_frame, applicable_only=False) if not isinstance(path_or_frame, pd.DataFrame)
             else path_or_frame)
    if "applicable" not in frame.columns:
        return pd.DataFrame(columns=SETTING + ["method", "na_reason"])
    na = frame[~frame["applicable"].astype(bool)]
    return na[SETTING + ["method", "na_reason"]].drop_duplicates(SETTING + ["method"]).reset_index(drop=True)


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
    for score in table_scores():
        out[score.name] = resolve(score.transform)(out[score.column]) if score.transform else out[score.column]
    out["RTE"] = out["seconds_R"] / out["seconds"]
    out.loc[out["method"] == "original", "RTE"] = np.nan  # nothing was unlearned
    return out


def summary(frame: pd.DataFrame, level: float = CI_LEVEL) -> pd.DataFrame:
    """Per (dataset, model, method): point estimate (`_mean`), std over seeds (`_std`),
    t-CI half-width (`_ci`) and bounds (`_ci_low`, `_ci_high`, clipped to [0, 1] for scores
    that cannot leave it) of every score in SUMMARY_SCORES, and `n_seeds`; `diverged_seeds`
    counts the seeds with non-finite outputs, `diverged` is true when any has (their
    Indisc and test_MIA are then NaN, not a mean over the other seeds), and
    `nonfinite_fraction` is the mean over seeds of the fraction of non-finite rows."""
    seeds = per_seed(frame)
    groups = seeds.groupby(["dataset", "model", "method"], sort=False)
    means = groups[["retain_acc", "forget_acc", "test_acc", "seconds", "retain_acc_R", "forget_acc_R",
                    "test_acc_R", "seconds_R", *ATTACK_SCORES]].mean()
    n = groups.size()
    complete = groups[ATTACK_SCORES].count().eq(n, axis=0)  # pandas' mean skips NaN: undo that
    means[ATTACK_SCORES] = means[ATTACK_SCORES].where(complete)
    point = pd.DataFrame(index=means.index)
    point["RA"], point["FA"], point["TA"] = means["retain_acc"], means["forget_acc"], means["test_acc"]
    point["RR"] = means["retain_acc"] / means["retain_acc_R"]
    point["FR"] = means["forget_acc"] / means["forget_acc_R"]
    point["TR"] = means["test_acc"] / means["test_acc_R"]
    point["RetDev"] = (point["RR"] - 1).abs() + (point["FR"] - 1).abs() + (point["TR"] - 1).abs()
    for score in ATTACK_SCORES:
        point[score] = means[score]
    point["RTE"] = means["seconds_R"] / means["seconds"]
    point.loc[point.index.get_level_values("method") == "original", "RTE"] = np.nan
    point["seconds"] = means["seconds"]
    spread = groups[SUMMARY_SCORES].std(ddof=1)
    spread[ATTACK_SCORES] = spread[ATTACK_SCORES].where(complete)
    half = spread.mul(t_quantile(n, level), axis=0).div(np.sqrt(n), axis=0)
    out = point.add_suffix("_mean").join(spread.add_suffix("_std")).join(half.add_suffix("_ci"))
    for score in SUMMARY_SCORES:
        low = out[f"{score}_mean"] - out[f"{score}_ci"]
        out[f"{score}_ci_low"] = low.clip(lower=0) if score in NONNEGATIVE else low
        high = out[f"{score}_mean"] + out[f"{score}_ci"]
        out[f"{score}_ci_high"] = high.clip(upper=1) if score in AT_MOST_ONE else high
    out["n_seeds"] = n
    out["diverged_seeds"] = groups["diverged"].sum().astype(int)
    out["diverged"] = out["diverged_seeds"] > 0
    out["nonfinite_fraction"] = groups["nonfinite_fraction"].mean()
    for column in JOINED_FLAGS:
        out[column] = groups[column].agg(lambda values: "+".join(sorted(set(map(str, values)))))
    return out.reset_index()


# --- confidence intervals ---------------------------------------------------------------

def t_quantile(n, level: float = CI_LEVEL):
    """Two-sided Student-t quantile t_{(1+level)/2, n-1}; NaN where n < 2."""
    index = n.index if isinstance(n, pd.Series) else None
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore"):
        q = stats.t.ppf(0.5 + level / 2, np.where(n >= 2, n - 1, np.nan))
    return pd.Series(q, index=index) if index is not None else q


def ci_halfwidth(values, level: float = CI_LEVEL) -> float:
    """Half-width of the t-based confidence interval of the mean of `values` (NaNs dropped)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return float("nan")
    return float(t_quantile(len(x), level) * x.std(ddof=1) / np.sqrt(len(x)))


# --- rankings ---------------------------------------------------------------------------

def rank(frame: pd.DataFrame, groups, by: str = "RetDev_mean", tie: str = "Indisc_mean",
         decimals: int | None = RANK_DECIMALS, last: str = "diverged") -> pd.Series:
    """Rank rows within each group of `groups`: rows flagged in column `last` (when the
    frame has it: diverged models) after all others, then `by` ascending (rounded to
    `decimals` when given), then `tie` descending; rows equal on all share their mean
    position; NaN sorts last. Returns a float Series aligned with `frame`."""
    primary = frame[by].round(decimals) if decimals is not None else frame[by]
    flagged = frame[last].fillna(False).astype(bool) if last in frame.columns else False
    keys = pd.DataFrame({"g": frame[groups].astype(str).agg("/".join, axis=1) if isinstance(groups, list)
                         else frame[groups].astype(str), "d": flagged, "p": primary, "s": -frame[tie]},
                        index=frame.index)
    ordered = keys.sort_values(["g", "d", "p", "s"], kind="stable", na_position="last")
    position = ordered.groupby("g", sort=False).cumcount() + 1.0
    ordered = ordered.assign(pos=position, p=ordered["p"].fillna(np.inf), s=ordered["s"].fillna(np.inf))
    shared = ordered.groupby(["g", "d", "p", "s"], sort=False)["pos"].transform("mean")
    return shared.reindex(frame.index)


def rankings(table: pd.DataFrame, seeds: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (dataset, model): rank of each unlearning method by RetDev, Indisc breaking ties.

    `table` is `summary(...)`; `seeds` (`per_seed(...)`, optional) adds the same ranking
    done seed by seed: mean, std and t-CI half-width of each method's per-seed rank."""
    methods_only = table[~table["method"].isin(REFERENCES)].copy()
    if "diverged" not in methods_only:
        methods_only["diverged"] = False
    flags = ["diverged"] + [c for c in JOINED_FLAGS if c in methods_only]
    out = methods_only[SETTING + ["method", "RetDev_mean", "Indisc_mean"] + flags].rename(
        columns={"RetDev_mean": "RetDev", "Indisc_mean": "Indisc"}).reset_index(drop=True)
    out["rank"] = rank(out, SETTING, by="RetDev", tie="Indisc")
    out["n_methods"] = out.groupby(SETTING)["method"].transform("size")
    if seeds is not None:
        per = seeds[~seeds["method"].isin(REFERENCES)].copy()
        per["seed_rank"] = rank(per, SETTING + ["seed"], by="RetDev", tie="Indisc")
        g = per.groupby(SETTING + ["method"])["seed_rank"]
        stats_ = pd.DataFrame({"seed_rank_mean": g.mean(), "seed_rank_std": g.std(ddof=1),
                               "seed_rank_min": g.min(), "seed_rank_max": g.max(),
                               "seed_rank_ci": g.agg(ci_halfwidth), "n_seeds": g.size()}).reset_index()
        out = out.merge(stats_, on=SETTING + ["method"], how="left")
    return out.sort_values(SETTING + ["rank"], kind="stable").reset_index(drop=True)


def rank_matrix(ranks: pd.DataFrame, complete: bool = True) -> pd.DataFrame:
    """Settings (rows, "dataset/model") x methods (columns) of `rankings(...)["rank"]`;
    with `complete`, only the methods ranked in every setting."""
    wide = ranks.assign(setting=ranks["dataset"] + "/" + ranks["model"]).pivot(
        index="setting", columns="method", values="rank")
    wide = wide.reindex(index=list(dict.fromkeys(ranks["dataset"] + "/" + ranks["model"])))
    return wide.dropna(axis=1) if complete else wide


def mean_ranks(ranks: pd.DataFrame, level: float = CI_LEVEL) -> pd.DataFrame:
    """Per method: mean rank per model (over datasets) and over all settings, each with
    the t-CI half-width over the settings averaged; sorted by the overall mean rank."""
    out = pd.DataFrame(index=pd.Index(ranks["method"].unique(), name="method"))
    for model, block in ranks.groupby("model", sort=False):
        g = block.groupby("method")["rank"]
        out[f"mean_rank_{model}"] = g.mean()
        out[f"ci_{model}"] = g.agg(lambda x: ci_halfwidth(x, level))
        out[f"n_{model}"] = g.size()
    g = ranks.groupby("method")["rank"]
    out["mean_rank"] = g.mean()
    out["ci"] = g.agg(lambda x: ci_halfwidth(x, level))
    out["n_settings"] = g.size()
    return out.sort_values("mean_rank", kind="stable").reset_index()


# --- critical difference (Friedman + Nemenyi) ------------------------------------------

def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of mean ranks for k methods over n blocks (Demšar 2006):
    q_alpha / sqrt(2) * sqrt(k (k + 1) / (6 n)), q from the studentized range."""
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2.0)
    return float(q * np.sqrt(k * (k + 1) / (6.0 * n)))


def critical_difference(matrix: pd.DataFrame, alpha: float = 0.05) -> dict:
    """Friedman test and Nemenyi post-hoc on a blocks x methods matrix of ranks (lower
    better). Returns {"n_blocks", "k", "alpha", "friedman_chi2", "friedman_p", "cd",
    "table" (per method: mean_rank, place, p_vs_best, top_group, beats), "pvalues"}."""
    import scikit_posthocs as sp  # noqa: PLC0415 (heavy import, only here)

    matrix = matrix.dropna(axis=1)
    n, k = matrix.shape
    within = matrix.rank(axis=1)  # re-rank within each block: the methods compared here only
    mean = within.mean(axis=0)
    result = {"n_blocks": n, "k": k, "alpha": alpha, "friedman_chi2": np.nan, "friedman_p": np.nan,
              "cd": np.nan, "max_difference": float(k - 1)}
    if n >= 2 and k >= 3:
        if (within.nunique(axis=1) > 1).any():
            chi2, p = stats.friedmanchisquare(*[within[c].to_numpy() for c in within.columns])
            result["friedman_chi2"], result["friedman_p"] = float(chi2), float(p)
        result["cd"] = nemenyi_cd(k, n, alpha)
        pvalues = sp.posthoc_nemenyi_friedman(within.to_numpy())
        pvalues.index = pvalues.columns = within.columns
    else:
        pvalues = pd.DataFrame(np.nan, index=within.columns, columns=within.columns)
    best = mean.idxmin() if k else None
    table = pd.DataFrame({"method": mean.index, "mean_rank": mean.to_numpy()})
    table["mean_rank_ci"] = [ci_halfwidth(within[m]) for m in table["method"]]
    table["place"] = table["mean_rank"].rank(method="min")
    table["p_vs_best"] = [pvalues.loc[m, best] if m != best else 1.0 for m in table["method"]]
    table["top_group"] = table["p_vs_best"] >= alpha if n >= 2 and k >= 3 else np.nan
    table["beats"] = [int(((pvalues.loc[m] < alpha) & (mean > mean[m])).sum()) for m in table["method"]]
    table["beaten_by"] = [int(((pvalues.loc[m] < alpha) & (mean < mean[m])).sum()) for m in table["method"]]
    table["n_blocks"] = n
    result["table"] = table.sort_values(["mean_rank", "method"], kind="stable").reset_index(drop=True)
    result["pvalues"] = pvalues
    return result
