"""Per-scenario tables and the cross-scenario view (docs/protocol.md §10.8).

Within one scenario, each method is scored by its Gap to that scenario's retrained model:
the mean over RA, FA, TA and the scenario's success metrics (scenarios.SUCCESS) of
|mean over seeds of the method − that of the retrained model|. Not the paper's RetDev:
its ratios FA/FA_R and the like are undefined where the retrained model's value is about
0 (class forgetting, poisons), so every scenario, random included, is ranked by the Gap
in this view (the random scenario's paper tables keep RetDev). Methods are ranked within
one (scenario, dataset, model) only, diverged models last, methods that do not apply
left out ("n/a" with the reason). Kendall's tau (scipy.stats.kendalltau, tau-b) compares
each pair of scenarios' rankings over the methods ranked in both.
"""

from __future__ import annotations

from itertools import combinations
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from scipy import stats  # noqa: E402

from .. import REFERENCES, io, methods, scenarios, scores  # noqa: E402
from .figures import method_style, save  # noqa: E402
from .formatting import fmt_rank, markdown, write_csv  # noqa: E402

BASE = ("retain_acc", "forget_acc", "test_acc")
SHORT = {"retain_acc": "RA", "forget_acc": "FA", "test_acc": "TA", "forget_class_acc": "forget-class TA",
         "other_classes_acc": "other classes TA", "attack_success": "attack success",
         "pair_confusion": "pair confusion"}
SETTING = ["scenario", "dataset", "model"]


def success_columns(frame: pd.DataFrame) -> list[str]:
    """The success metrics some row of `frame` has."""
    return [c for c in scenarios.SUCCESS_COLUMNS if c in frame and frame[c].notna().any()]


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, dataset, model, method): means over seeds, the retrained model's,
    the Gap, the rank, n/a and flags."""
    rows = []
    for (scenario, dataset, model), block in frame.groupby(SETTING, sort=False):
        measured = list(BASE) + success_columns(block)
        ref = block[block["method"] == "retrained"][measured].mean()
        for method, rows_m in block.groupby("method", sort=False):
            applicable = bool(rows_m["applicable"].all()) if "applicable" in rows_m else True
            means = rows_m[measured].mean()
            gap = float((means - ref).abs().mean()) if applicable else np.nan
            reason = rows_m["na_reason"].dropna().iloc[0] if not applicable and "na_reason" in rows_m and \
                rows_m["na_reason"].notna().any() else None
            rows.append({"scenario": scenario, "dataset": dataset, "model": model, "method": method,
                         **{c: means[c] for c in measured}, "Gap": gap, "n_seeds": len(rows_m),
                         "diverged": bool(rows_m["diverged"].any()), "applicable": applicable, "na_reason": reason,
                         "hp_source": "+".join(sorted(set(map(str, rows_m["hp_source"])))),
                         "hp_scenario": "+".join(sorted(set(map(str, rows_m.get("hp_scenario", [scenario]))))),
                         })
    out = pd.DataFrame(rows)
    ranked = (~out["method"].isin(REFERENCES)) & out["applicable"]
    out["rank"] = np.nan
    out.loc[ranked, "rank"] = scores.rank(out[ranked].assign(tie=0.0), SETTING, by="Gap", tie="tie")
    return out


def kendall(ranks: pd.DataFrame) -> pd.DataFrame:
    """Kendall's tau-b between each pair of scenarios' rankings, per (dataset, model)."""
    rows = []
    ranked = ranks.dropna(subset=["rank"])
    for (dataset, model), block in ranked.groupby(["dataset", "model"], sort=False):
        wide = block.pivot(index="method", columns="scenario", values="rank")
        for a, b in combinations(list(dict.fromkeys(block["scenario"])), 2):
            both = wide[[a, b]].dropna()
            tau, p = stats.kendalltau(both[a], both[b]) if len(both) >= 2 else (np.nan, np.nan)
            rows.append({"dataset": dataset, "model": model, "scenario_a": a, "scenario_b": b, "tau": tau,
                         "p_value": p, "n_methods": len(both)})
    return pd.DataFrame(rows, columns=["dataset", "model", "scenario_a", "scenario_b", "tau", "p_value",
                                       "n_methods"])


def _fmt(x, digits=3) -> str:
    return "–" if pd.isna(x) else f"{x:.{digits}f}"


# what each hyperparameter origin means, for a scenario table's note (docs/protocol.md §10.8)
HP_NOTES = {
    "searched here": "searched on this scenario itself, in each seed's job",
    "random's search": "the random scenario's search choice, borrowed (`hyperparameters: random`, the cheap "
                       "design)",
    "config": "the config's (no search)",
    "defaults": "the method defaults (the search completed no trial)",
}


def hp_origin(hp_source, hp_scenario, scenario: str) -> str:
    """Where one summary row's hyperparameters came from, in words (HP_NOTES' keys);
    '–' for references and n/a rows, the joined values where seeds differ."""
    source, chose = str(hp_source), str(hp_scenario)
    if "+" in source + chose:  # the seeds' rows differ
        return f"{source} ({chose})"
    if source in ("recipe", "n/a", "nan", "None"):
        return "–"
    if source == "search":
        return "searched here" if chose == scenario else f"{chose}'s search"
    return source


def scenario_markdown(block: pd.DataFrame, scenario: str) -> str:
    """One scenario's table: references first, then methods by rank; n/a with the reason;
    where each method's hyperparameters came from."""
    measured = [c for c in list(BASE) + list(scenarios.SUCCESS_COLUMNS) if c in block and block[c].notna().any()]
    origins = [hp_origin(s, h, scenario) for s, h in zip(block["hp_source"], block["hp_scenario"])]
    notes = [f"{o}: {HP_NOTES[o]}" for o in HP_NOTES if o in origins] + \
        [o for o in dict.fromkeys(origins) if o not in HP_NOTES and o != "–"]
    parts = [f"# Scenario {scenario}\n",
             "Means over seeds; Gap = mean |method − retrained| over " + ", ".join(SHORT[c] for c in measured)
             + " (lower is better; docs/protocol.md §10.8). "
             + ("Hyperparameters (column hp): " + "; ".join(notes) + ". " if notes else "")
             + ("The paper's tables (results/tables/main.md) rank this scenario by RetDev."
                if scenario == "random" else "") + "\n"]
    for (dataset, model), sub in block.groupby(["dataset", "model"], sort=False):
        refs = sub[sub["method"].isin(REFERENCES)].sort_values("method", key=lambda m: m != "retrained")
        rows = pd.concat([refs, sub[~sub["method"].isin(REFERENCES)].sort_values(["applicable", "rank"],
                                                                                  ascending=[False, True])])
        table = pd.DataFrame({
            "method": [methods.label(m) + (" (diverged)" if d else "") for m, d in zip(rows["method"],
                                                                                     rows["diverged"])],
            **{SHORT[c]: [_fmt(x) for x in rows[c]] for c in measured},
            "Gap": [_fmt(x) for x in rows["Gap"]],
            "rank": [fmt_rank(r) if a else f"n/a: {why}" for r, a, why in
                     zip(rows["rank"], rows["applicable"], rows["na_reason"])],
            "hp": [hp_origin(s, h, scenario) for s, h in zip(rows["hp_source"], rows["hp_scenario"])],
            "seeds": list(rows["n_seeds"]),
        })
        parts.append(f"\n## {dataset} / {model}\n\n" + markdown(table))
    return "".join(parts)


def cross_markdown(ranks: pd.DataFrame, tau: pd.DataFrame) -> str:
    parts = ["# Rankings across scenarios\n",
             "Rank by Gap within each scenario (1 = best; docs/protocol.md §10.8); n/a = the method does not "
             "apply. Kendall's tau-b between two scenarios' rankings over the methods ranked in both.\n"]
    methods_only = ranks[~ranks["method"].isin(REFERENCES)]
    for (dataset, model), block in methods_only.groupby(["dataset", "model"], sort=False):
        wide = block.pivot(index="method", columns="scenario", values="rank")
        order = list(dict.fromkeys(block["scenario"]))
        wide = wide.reindex(columns=order)
        na = block.pivot(index="method", columns="scenario", values="applicable").reindex(columns=order)
        shown = pd.DataFrame({"method": [methods.label(m) for m in wide.index]})
        for s in order:
            shown[s] = [fmt_rank(r) if ok else "n/a" for r, ok in zip(wide[s], na[s].fillna(True))]
        parts.append(f"\n## {dataset} / {model}\n\n" + markdown(shown))
        t = tau[(tau["dataset"] == dataset) & (tau["model"] == model)]
        if len(t):
            tt = pd.DataFrame({"scenarios": t["scenario_a"] + " vs " + t["scenario_b"],
                               "Kendall's tau": [_fmt(x, 2) for x in t["tau"]],
                               "p": [_fmt(x, 3) for x in t["p_value"]], "methods": list(t["n_methods"])})
            parts.append("\n" + markdown(tt))
    return "".join(parts)


def write_scenario_tables(metrics_csv, table_paths: Sequence, out_ranks, out_tau, out_md) -> pd.DataFrame:
    """Per scenario {name}.csv and {name}.md (paths in `table_paths`, csv then md per
    scenario, as the rule lists them), the ranks side by side, Kendall's tau."""
    frame = scores.read_metrics(metrics_csv, applicable_only=False, scenario=None)
    if "scenario" not in frame:
        frame["scenario"] = "random"
    table = summary(frame)
    for path in table_paths:
        name = str(path).replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
        block = table[table["scenario"] == name]
        if block.empty:
            raise ValueError(f"results/metrics.csv holds no row of scenario {name!r}")
        if str(path).endswith(".csv"):
            write_csv(block, path)
        else:
            io.write_text(path, scenario_markdown(block, name))
    tau = kendall(table)
    write_csv(table[["scenario", "dataset", "model", "method", "Gap", "rank", "applicable", "na_reason",
                     "diverged", "hp_source", "hp_scenario"]], out_ranks)
    write_csv(tau, out_tau)
    io.write_text(out_md, cross_markdown(table, tau))
    return table


def ranking_figure(ranks_csv, tau_csv, png, pdf) -> None:
    """Per (dataset, model) that ran several scenarios (all settings if none did): a bump
    chart of each method's rank per scenario (crossing lines = rankings that flip) beside
    the heatmap of Kendall's tau."""
    ranks = pd.read_csv(ranks_csv)
    ranks = ranks[~ranks["method"].isin(REFERENCES)]
    tau = pd.read_csv(tau_csv)
    # only the settings that ran more than one scenario have rankings to compare
    counts = ranks.groupby(["dataset", "model"], sort=False)["scenario"].nunique()
    settings = [s for s in dict.fromkeys(zip(ranks["dataset"], ranks["model"])) if counts[s] > 1] or \
        list(dict.fromkeys(zip(ranks["dataset"], ranks["model"])))
    style = method_style()
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.0)
    fig, axes = plt.subplots(len(settings), 2, figsize=(13, 5.5 * len(settings)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.6, 1]})
    for (dataset, model), (ax, ax_tau) in zip(settings, axes):
        block = ranks[(ranks["dataset"] == dataset) & (ranks["model"] == model)]
        order = list(dict.fromkeys(block["scenario"]))
        for method, rows in block.groupby("method", sort=False):
            rows = rows.set_index("scenario").reindex(order)
            colour, marker = style.get(method, ("grey", "o"))
            x = np.arange(len(order))
            ax.plot(x, rows["rank"], color=colour, marker=marker, linewidth=1.5, label=methods.label(method))
            last = rows["rank"].last_valid_index()
            if last is not None:
                ax.annotate(methods.label(method), (order.index(last), rows.loc[last, "rank"]),
                            xytext=(4, 0), textcoords="offset points", fontsize=7, va="center")
        ax.set_xticks(np.arange(len(order)), order)
        ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.invert_yaxis()
        ax.set_ylabel("rank by Gap (1 = best)")
        ax.set_title(f"{dataset} / {model}: rank per scenario (crossings = flips)")
        t = tau[(tau["dataset"] == dataset) & (tau["model"] == model)]
        grid = pd.DataFrame(np.eye(len(order)), index=order, columns=order)
        for _, row in t.iterrows():
            grid.loc[row["scenario_a"], row["scenario_b"]] = grid.loc[row["scenario_b"], row["scenario_a"]] = \
                row["tau"]
        sns.heatmap(grid, annot=True, fmt=".2f", cmap="RdBu", vmin=-1, vmax=1, ax=ax_tau, square=True,
                    cbar_kws={"label": "Kendall's tau", "shrink": 0.7})
        ax_tau.set_title("Kendall's tau between scenarios' rankings")
    fig.tight_layout()
    save(fig, png, pdf)


def scenario_figure(table_csv, png, pdf) -> None:
    """One scenario: each method's test accuracy against the scenario's first success
    metric (FA where it has none), the original and retrained models marked; the
    retrained model's values as dashed lines."""
    table = pd.read_csv(table_csv)
    table = table[table["applicable"].astype(bool)]
    x = next((c for c in scenarios.SUCCESS_COLUMNS if c in table and table[c].notna().any()), "forget_acc")
    settings = list(dict.fromkeys(zip(table["dataset"], table["model"])))
    style = method_style()
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.0)
    fig, axes = plt.subplots(1, len(settings), figsize=(6.5 * len(settings), 5), squeeze=False)
    for (dataset, model), ax in zip(settings, axes[0]):
        block = table[(table["dataset"] == dataset) & (table["model"] == model)]
        for _, row in block.iterrows():
            colour, marker = style.get(row["method"], ("grey", "o"))
            ax.scatter(row[x], row["test_acc"], color=colour, marker=marker, s=70 if row["method"] in REFERENCES
                       else 40, label=methods.label(row["method"]), edgecolor="black", linewidth=0.4)
        ref = block[block["method"] == "retrained"]
        if len(ref):
            ax.axvline(ref[x].iloc[0], color="black", linestyle="--", linewidth=0.8)
            ax.axhline(ref["test_acc"].iloc[0], color="black", linestyle="--", linewidth=0.8)
        ax.set_xlabel(SHORT.get(x, x) + " (dashed: retrained)")
        ax.set_ylabel("TA")
        ax.set_title(f"{block['scenario'].iloc[0]}: {dataset} / {model}")
        ax.legend(fontsize=6, ncol=2, loc="best")
    fig.tight_layout()
    save(fig, png, pdf)
