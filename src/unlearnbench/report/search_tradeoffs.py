"""What the hyperparameter search found (docs/protocol.md §5): per setting (dataset,
model) and method, the Pareto front of its trials over the four objectives, where the
chosen trial sits, and how sensitive the method is to its hyperparameters.

Inputs: the per-trial CSVs (results/{dataset}/{model}/search/{method}/seed{seed}.csv,
pooled over search seeds) and best.json. The trials of one method are rebuilt as an
in-memory Optuna study, so the front is Optuna's (`Study.best_trials`, non-dominated
trials of the four minimised objectives) and the importances are Optuna's
(`optuna.importance.get_param_importances`, fANOVA, on the norm the selection
minimises), with the parameter distributions taken from the method's own search space.

Sensitivity: the spread of the norm over complete trials (best, median, worst; worst -
best) says at a glance how much a method depends on its setting; importances say which
parameter matters, and are computed only with at least `MIN_IMPORTANCE_TRIALS` complete
trials: a random forest fitted to 2 or 3 points (the default run's budget) ranks noise,
so below that the table says so instead of printing numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import io, methods, search

MIN_IMPORTANCE_TRIALS = 10


def read_setting(csvs: Sequence) -> pd.DataFrame:
    """All trials of the given CSVs, with dataset, model, method and seed columns."""
    frames = []
    for path in csvs:
        match = search.TRIALS_PATH.search(Path(path).as_posix())
        if not match:
            raise ValueError(f"not a search trials path: {path}")
        frame = search.read_trials(path)
        frames.append(frame.assign(**{k: (int(v) if k == "seed" else v) for k, v in match.groupdict().items()}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _distributions(method: str, epoch_cap: int) -> dict:
    """The method's search-space distributions, from one throwaway trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    methods.get(method).search_space(trial, epoch_cap)
    return dict(trial.distributions)


def _param(value, dist):
    """A CSV value as the distribution's internal value, or None when it does not fit."""
    import optuna

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        hits = [c for c in dist.choices if c == value or (isinstance(c, (int, float)) and
                                                          not isinstance(c, bool) and float(c) == float(value))]
        return hits[0] if hits else None
    value = int(round(value)) if isinstance(dist, optuna.distributions.IntDistribution) else float(value)
    return value if dist._contains(dist.to_internal_repr(value)) else None


def method_study(trials: pd.DataFrame, distributions: Mapping):
    """An in-memory multi-objective study of the COMPLETE trials (every search seed);
    each trial keeps its seed and number as user attributes; params only where every
    value fits the method's distributions (the defaults row -1 may not)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["minimize"] * len(search.OBJECTIVES))
    done = trials[trials["state"] == "COMPLETE"]
    for _, row in done.iterrows():
        values = [float(row[o]) for o in search.OBJECTIVES]
        if not np.all(np.isfinite(values)):
            continue
        params = {name: _param(row.get(search.PARAM_PREFIX + name), dist) for name, dist in distributions.items()}
        fits = all(v is not None for v in params.values()) and int(row["number"]) >= 0
        study.add_trial(optuna.trial.create_trial(
            values=values, params=params if fits else {}, distributions=dict(distributions) if fits else {},
            user_attrs={"seed": int(row["seed"]), "number": int(row["number"]), "norm": float(np.linalg.norm(values))}))
    return study


def importances(study, n_complete: int) -> dict | str:
    import optuna

    sampled = [t for t in study.trials if t.params]
    if n_complete < MIN_IMPORTANCE_TRIALS or len(sampled) < MIN_IMPORTANCE_TRIALS:
        return f"n/a ({len(sampled)} < {MIN_IMPORTANCE_TRIALS} trials)"
    sub = optuna.create_study(directions=["minimize"])
    for t in sampled:
        sub.add_trial(optuna.trial.create_trial(value=t.user_attrs["norm"], params=t.params,
                                                distributions=t.distributions))
    return optuna.importance.get_param_importances(
        sub, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))


def summarise(trials: pd.DataFrame, best: Mapping, distributions: Mapping,
              first_is_defaults: bool) -> tuple[dict, pd.DataFrame]:
    """One table row for a method and its complete trials annotated with `pareto` and
    `chosen`."""
    study = method_study(trials, distributions)
    front = {(t.user_attrs["seed"], t.user_attrs["number"]) for t in study.best_trials}
    done = trials[(trials["state"] == "COMPLETE")].copy()
    done = done[np.isfinite(done[list(search.OBJECTIVES)].to_numpy(dtype=float)).all(1)]
    done["norm"] = np.linalg.norm(done[list(search.OBJECTIVES)].to_numpy(dtype=float), axis=1)
    keys = list(zip(done["seed"].astype(int), done["number"].astype(int)))
    done["pareto"] = [k in front for k in keys]
    chosen = (best.get("seed"), best.get("trial"))
    done["chosen"] = [k == chosen for k in keys]
    norms = done["norm"].to_numpy()
    counts = trials["state"].value_counts()
    first = done[(done["number"] == 0)]["norm"]
    imp = importances(study, len(done))
    row = {
        "complete": int(len(done)), "failed": int(counts.get("FAIL", 0)), "pruned": int(counts.get("PRUNED", 0)),
        "chosen_seed": best.get("seed"), "chosen_trial": best.get("trial"),
        "chosen_norm": best.get("norm"),
        "best_norm": float(norms.min()) if len(norms) else math.nan,
        "median_norm": float(np.median(norms)) if len(norms) else math.nan,
        "worst_norm": float(norms.max()) if len(norms) else math.nan,
        "norm_spread": float(norms.max() - norms.min()) if len(norms) else math.nan,
        "defaults_norm": float(first.min()) if first_is_defaults and len(first) else math.nan,
        "pareto_size": len(front),
        "chosen_on_front": bool(done["chosen"].any() and done.loc[done["chosen"], "pareto"].all()),
        "importances": imp if isinstance(imp, str) else json.dumps({k: round(v, 4) for k, v in imp.items()}),
    }
    return row, done


def _settings_of(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys(zip(frame["dataset"], frame["model"])))


def search_tradeoffs(csvs: Sequence, best_jsons: Sequence, epoch_caps: Mapping[str, int],
                     first_is_defaults: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table, trials): one row per (dataset, model, method); every complete trial."""
    trials = read_setting(csvs)
    bests = {}
    for path in best_jsons:
        b = io.read_json(path)
        parts = Path(path).parts
        bests[(parts[-5], parts[-4], b["method"])] = b  # results/{dataset}/{model}/search/{method}/best.json
    rows, annotated = [], []
    order = {m: i for i, m in enumerate(methods.names())}
    for (dataset, model, method), block in trials.groupby(["dataset", "model", "method"], sort=False):
        dists = _distributions(method, epoch_caps[dataset])
        row, done = summarise(block, bests.get((dataset, model, method), {}), dists, first_is_defaults)
        rows.append({"dataset": dataset, "model": model, "method": method, **row})
        annotated.append(done)
    table = pd.DataFrame(rows)
    table = (table.assign(_r=table["method"].map(order)).sort_values(["dataset", "model", "_r"], kind="stable")
             .drop(columns="_r").reset_index(drop=True))
    return table, pd.concat(annotated, ignore_index=True) if annotated else pd.DataFrame()


def write_table(csvs: Sequence, best_jsons: Sequence, out_csv, out_md, epoch_caps: Mapping[str, int],
                first_is_defaults: bool) -> pd.DataFrame:
    table, _ = search_tradeoffs(csvs, best_jsons, epoch_caps, first_is_defaults)
    with io.atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    parts = ["# What the search found\n",
             "Per method, over its complete trials (all search seeds): the norm of the four objectives "
             "(⅓|RA−RA_R|, ⅓|FA−FA_R|, ⅓|VA−VA_R|, 2|MIA_val−0.5|; the selection minimises it) at the chosen "
             "trial, its median and worst, and their spread (worst − best: small = robust to its setting); "
             + ("trial 0 = the method defaults moved into the search space; " if first_is_defaults else "")
             + "the number of Pareto-optimal trials over the four objectives (the chosen one, the smallest norm, "
             f"is always among them); Optuna's fANOVA importances on the norm with at least {MIN_IMPORTANCE_TRIALS} "
             "complete trials (fewer: not estimated).\n"]
    for (dataset, model) in _settings_of(table):
        block = table[(table["dataset"] == dataset) & (table["model"] == model)]
        block = block.sort_values("norm_spread", kind="stable")
        shown = pd.DataFrame({
            "Method": [methods.label(m) for m in block["method"]],
            "trials (failed)": [f"{c} ({f})" for c, f in zip(block["complete"], block["failed"])],
            "chosen norm": [_fmt(v) for v in block["chosen_norm"]],
            "median": [_fmt(v) for v in block["median_norm"]],
            "worst": [_fmt(v) for v in block["worst_norm"]],
            "spread": [_fmt(v) for v in block["norm_spread"]],
            **({"defaults (trial 0)": [_fmt(v) for v in block["defaults_norm"]]} if first_is_defaults else {}),
            "Pareto front": block["pareto_size"].astype(str).tolist(),
            "importances": [_imp(v) for v in block["importances"]],
        })
        parts.append(f"## {dataset} / {model} (rows by spread: most robust first)\n")
        parts.append(shown.to_markdown(index=False) + "\n")
    parts += methods.legend(table["method"]) if "method" in table else []
    io.write_text(out_md, "\n".join(parts))
    print(table.to_string())
    return table


def _fmt(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def _imp(v: str) -> str:
    if not v.startswith("{"):
        return v
    return ", ".join(f"{k} {x:.2f}" for k, x in list(json.loads(v).items())[:3])


# ----------------------------------------------------------------------------- figure


def write_figures(csvs: Sequence, best_jsons: Sequence, pngs: Sequence, pdfs: Sequence,
                  settings: Sequence[tuple[str, str]], epoch_caps: Mapping[str, int], first_is_defaults: bool) -> None:
    """One figure per setting: top, the norm of every complete trial per method (sorted by
    spread; filled = Pareto-optimal, hollow = dominated, star = chosen); below, per method,
    parallel coordinates of the four objectives (grey dominated, colour Pareto front,
    black the chosen trial)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from .figures import method_style, save

    table, trials = search_tradeoffs(csvs, best_jsons, epoch_caps, first_is_defaults)
    style = method_style()
    sns.set_theme(style="whitegrid", context="paper")
    for (dataset, model), png, pdf in zip(settings, pngs, pdfs):
        block = table[(table["dataset"] == dataset) & (table["model"] == model)].sort_values("norm_spread",
                                                                                              kind="stable")
        names = list(block["method"])
        sub = trials[(trials["dataset"] == dataset) & (trials["model"] == model)]
        cols = 6
        rows = max(1, math.ceil(len(names) / cols))
        fig = plt.figure(figsize=(2.4 * cols, 3.2 + 2.2 * rows))
        grid = fig.add_gridspec(1 + rows, cols, height_ratios=[1.6] + [1] * rows)
        ax = fig.add_subplot(grid[0, :])
        for i, m in enumerate(names):
            t = sub[sub["method"] == m]
            colour = style.get(m, ("C0", "o"))[0]
            jitter = np.linspace(-0.15, 0.15, len(t)) if len(t) > 1 else np.zeros(len(t))
            for (_, r), dx in zip(t.iterrows(), jitter):
                ax.scatter(i + dx, r["norm"], s=90 if r["chosen"] else 28, marker="*" if r["chosen"] else "o",
                           facecolors=colour if r["pareto"] else "none", edgecolors="black" if r["chosen"] else colour,
                           linewidths=1.0, zorder=3)
        ax.set_xticks(range(len(names)), [methods.label(m) for m in names], rotation=30, ha="right")
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_ylabel("norm of the 4 objectives")
        ax.set_title(f"{dataset} / {model}: norm of every complete trial (left: most robust; filled = Pareto-optimal, "
                     "hollow = dominated, star = chosen)", fontsize=9)
        labels = ["RA gap", "FA gap", "VA gap", "MIA gap"]
        for i, m in enumerate(names):
            a = fig.add_subplot(grid[1 + i // cols, i % cols])
            t = sub[sub["method"] == m]
            colour = style.get(m, ("C0", "o"))[0]
            for _, r in t.sort_values(["pareto", "chosen"]).iterrows():
                y = [r[o] for o in search.OBJECTIVES]
                a.plot(range(4), y, color="black" if r["chosen"] else colour if r["pareto"] else "0.75",
                       lw=1.8 if r["chosen"] else 1.0, marker="o", ms=2.5)
            a.set_xticks(range(4), labels, fontsize=6)
            a.tick_params(axis="y", labelsize=6)
            a.set_title(f"{methods.label(m)} ({len(t)} trials)", fontsize=8)
        fig.tight_layout()
        save(fig, png, pdf)
