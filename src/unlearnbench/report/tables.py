"""The main, RTE, rankings, hyperparameters and U-LiRA tables as CSV (full precision),
Markdown and LaTeX (booktabs), from results/metrics.csv (cells and formats: formatting.py;
the critical-difference table: critical_difference.py).

Every displayed entry is `point ± h`, h the half-width of the 95 % t-based confidence
interval over seeds (scores.py says how it is computed); the CSVs also keep the std,
the interval bounds and the number of seeds.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from .. import io, methods, scores
from ..attacks.registry import table_scores
from .formatting import CI_NOTE, Cell, fmt_rank, is_missing, latex, markdown, point_ci, write_csv
from .method_scope import PAPER_RANK, PAPER_RANK_NOTE, na_labels, na_notes, paper_frame, paper_rank_cell, with_na

# the per-model attacks' scores (attacks/registry.py MODEL_ATTACKS: Indisc and test MIA
# from the population MIA) between RetDev and RTE
_ATTACKS = table_scores()
MAIN_COLUMNS = [("RA", 3), ("FA", 3), ("TA", 3), ("RR", 3), ("FR", 3), ("TR", 3), ("RetDev", 3),
                *((s.name, s.decimals) for s in _ATTACKS), ("RTE", 1)]
HEADERS = {s.name: s.header for s in _ATTACKS if s.header}
# best value per setting (among unlearning methods) is printed in bold
BEST = {"RetDev": "min", **{s.name: s.best for s in _ATTACKS if s.best}, "RTE": "max"}
DIVERGED = "diverged"
# scores whose value is undefined for a model with non-finite outputs (NaN in the CSVs)
UNDEFINED_WHEN_DIVERGED = {s.name for s in _ATTACKS}
DIVERGED_NOTE = ("(diverged k/n): on k of n seeds the model gave non-finite outputs (on the share of evaluated "
                 "rows given in main.csv's nonfinite_fraction); those rows count as wrong predictions, its MIA and "
                 "Indisc are undefined (shown as 'diverged'), it is never marked best and ranks below every method "
                 "that did not diverge.")


# --- settings, marks and notes shared by the table families --------------------------------

def setting_name(dataset: str, model: str) -> str:
    return f"{dataset} / {model}"


def settings_of(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys(zip(frame["dataset"], frame["model"])))


# --- main table ----------------------------------------------------------------------------

def order_methods(table: pd.DataFrame, by: str = "RetDev_mean") -> pd.DataFrame:
    """References first (retrained, original), then methods by `by` ascending, diverged
    methods last."""
    rank = table["method"].map({"retrained": 0, "original": 1}).fillna(2) + 2 * _diverged(table)
    return (table.assign(_rank=rank).sort_values(["dataset", "model", "_rank", by], kind="stable")
            .drop(columns="_rank").reset_index(drop=True))


def _diverged(frame: pd.DataFrame) -> pd.Series:
    return frame["diverged"].fillna(False).astype(bool) if "diverged" in frame else pd.Series(False, frame.index)


def diverged_label(label: str, row) -> str:
    """'FF (diverged 2/3)' for a summary row with diverged seeds, else the label."""
    k = row.get("diverged_seeds", 0)
    k = 0 if is_missing(k) else int(k)
    return f"{label} ({DIVERGED} {k}/{int(row['n_seeds'])})" if k else label


HP_NOTE = ("Hyperparameters come from the search unless marked: [defaults] = every search trial of the method "
           "failed and it ran with its method defaults (search.on_no_complete_trial: defaults; their epochs are "
           "not capped at E_max); [config] = method defaults with method_params, not searched.")
NO_SEARCH_NOTE = "Hyperparameters: the method defaults with method_params (no search)."


def split_sources(values) -> set[str]:
    return {part for v in values if not is_missing(v) for part in str(v).split("+")}


def hp_mark(source, searched: bool) -> str:
    """' [defaults]' for a method that ran with its defaults after a failed search,
    ' [config]' for an unsearched method in a run where others were searched."""
    parts = split_sources([source])
    if "defaults" in parts:
        return " [defaults]"
    return " [config]" if searched and "config" in parts else ""


def _searched(frame: pd.DataFrame) -> bool:
    return "search" in split_sources(frame["hp_source"]) if "hp_source" in frame else False


def method_label(method: str, row, searched: bool) -> str:
    """The method's display label with its hyperparameter mark and divergence count."""
    return diverged_label(methods.label(method) + hp_mark(row.get("hp_source"), searched), row)


def conditions(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """Distinct (device, precision) pairs of the rows of `frame` (metrics.csv rows)."""
    if not {"device", "precision"} <= set(frame.columns):
        return []
    return sorted(set(zip(frame["device"].astype(str), frame["precision"].astype(str))))


def conditions_note(frame: pd.DataFrame) -> str:
    """What the rows were computed under; a warning when they differ (metrics.csv rows)."""
    pairs = conditions(frame)
    if not pairs:
        return ""
    if len(pairs) == 1:
        return f"Every row computed on {pairs[0][0]} in {pairs[0][1]}."
    counts = frame.groupby(["device", "precision"]).size()
    listed = ", ".join(f"{d} {p} ({counts[d, p]} rows)" for d, p in pairs)
    return (f"WARNING: rows were produced under different devices or precisions: {listed}; compare them with "
            "care (metrics.csv columns device and precision).")


def flag_notes(frame: pd.DataFrame, shown: pd.DataFrame) -> list[str]:
    """Footnotes for a table built from metrics rows `frame` showing the rows `shown`
    (summary or rankings rows): divergence, hyperparameter marks, computing conditions."""
    notes = [DIVERGED_NOTE] if _diverged(shown).any() else []
    searched = _searched(frame)
    if "hp_source" in shown and any(hp_mark(v, searched) for v in shown["hp_source"]):
        notes.append(HP_NOTE)
    if "hp_source" in frame and not searched and "config" in split_sources(frame["hp_source"]):
        notes.append(NO_SEARCH_NOTE)
    note = conditions_note(frame)
    return notes + ([note] if note else []) + (methods.legend(shown["method"]) if "method" in shown else [])


def _best_flags(block: pd.DataFrame, column: str, how: str) -> pd.Series:
    values = block[f"{column}_mean"].where(~block["method"].isin(scores.REFERENCES) & ~_diverged(block))
    if values.isna().all():
        return pd.Series(False, index=block.index)
    target = values.min() if how == "min" else values.max()
    return values.round(6) == round(target, 6)


def main_blocks(table: pd.DataFrame, columns=MAIN_COLUMNS, na: pd.DataFrame | None = None
                ) -> list[tuple[str, pd.DataFrame]]:
    """One block per setting; `na` (scores.not_applicable rows) adds their n/a rows."""
    blocks = []
    searched = _searched(table)
    for (dataset, model), block in table.groupby(["dataset", "model"], sort=False):
        n = int(block["n_seeds"].max())
        mixed = [c for c in ("device", "precision") if c in block and len(split_sources(block[c])) > 1]
        best = {c: _best_flags(block, c, how) for c, how in BEST.items() if f"{c}_mean" in block}
        rows = []
        for idx, r in block.iterrows():
            row = {"Method": Cell.make(method_label(r["method"], r, searched))}
            for c, d in columns:
                text = point_ci(r[f"{c}_mean"], r.get(f"{c}_ci", np.nan), d)
                if c in UNDEFINED_WHEN_DIVERGED and is_missing(r[f"{c}_mean"]) and r.get("diverged", False):
                    text = DIVERGED
                row[HEADERS.get(c, c)] = Cell.make(text, bool(best[c][idx]) if c in best else False)
            rows.append(row)
        mixed_text = "".join(f"; mixed {c}: {'+'.join(sorted(split_sources(block[c])))}" for c in mixed)
        shown = pd.DataFrame(rows) if na is None else with_na(pd.DataFrame(rows), na_labels(na, dataset, model))
        blocks.append((f"{setting_name(dataset, model)} ({n} seed{'s' if n != 1 else ''}{mixed_text})", shown))
    return blocks


def to_markdown(table: pd.DataFrame, columns=MAIN_COLUMNS, title: str = "", na: pd.DataFrame | None = None) -> str:
    parts = [f"# {title}\n"] if title else []
    for name, frame in main_blocks(table, columns, na):
        parts.append(f"## {name}\n")
        parts.append(markdown(frame))
    return "\n".join(parts)


MAIN_TITLE = ("Main results: point estimate ± 95 % CI half-width over seeds (t-based). "
              "RetDev lower is better; Indisc and RTE higher; best method per column in bold")


def write_main_table(metrics_csv, out_csv, out_md, out_tex=None) -> pd.DataFrame:
    frame = scores.read_metrics(metrics_csv)
    table = order_methods(scores.summary(frame))
    write_csv(table, out_csv)
    na = scores.not_applicable(metrics_csv)
    notes = flag_notes(frame, table) + na_notes(na)
    io.write_text(out_md, to_markdown(table, title=MAIN_TITLE, na=na) + _main_legend()
                  + "".join(f"\n{n}\n" for n in notes))
    if out_tex:
        io.write_text(out_tex, latex(main_blocks(table, na=na), " ".join([MAIN_TITLE + "."] + notes), "tab:main"))
    return table


def _main_legend() -> str:
    return ("\nRA, FA, TA: retain, forget, test accuracy. RR, FR, TR: the same as ratios to the retrained "
            "model (ratio of means over seeds). RetDev = |RR-1| + |FR-1| + |TR-1|. Indisc = 1 - |2 MIA - 1| "
            "(test-set population MIA). RTE = retraining seconds / unlearning seconds. "
            f"{CI_NOTE}; for the ratio scores the half-width of the per-seed values is put around the "
            "ratio of means. Full precision, std and interval bounds: main.csv.\n")


# --- run-time efficiency ---------------------------------------------------------------------

RTE_TITLE = "Run-time efficiency: RTE = retraining seconds / unlearning seconds (higher is faster)"


def rte_table(table: pd.DataFrame) -> pd.DataFrame:
    """Long: per (dataset, model, method) RTE and unlearning seconds with CIs; the
    retrained row holds the retraining seconds (RTE 1); the original row is left out."""
    keep = [c for c in table.columns if c.startswith(("RTE_", "seconds_"))]
    keep += [c for c in ("n_seeds", "diverged", "diverged_seeds", *scores.JOINED_FLAGS) if c in table.columns]
    out = table.loc[table["method"] != "original", ["dataset", "model", "method"] + keep].copy()
    retrain = out[out["method"] == "retrained"].set_index(["dataset", "model"])["seconds_mean"]
    out["retrain_seconds"] = out.join(retrain.rename("r"), on=["dataset", "model"])["r"].to_numpy()
    # methods by geometric-mean RTE over settings, fastest first; retrained first
    geo = out[out["method"] != "retrained"].groupby("method")["RTE_mean"].apply(lambda x: np.exp(np.log(x).mean()))
    order = {"retrained": -np.inf, **(-geo).to_dict()}
    out["_o"] = out["method"].map(order)
    out = out.sort_values(["_o", "method", "dataset", "model"], kind="stable").drop(columns="_o")
    return out.reset_index(drop=True)


def _wide(long: pd.DataFrame, column: str, settings, digits=None, best: str | None = None) -> pd.DataFrame:
    methods_ = list(dict.fromkeys(long["method"]))
    index = long.set_index(["method", "dataset", "model"])
    rows = []
    searched = _searched(long)
    for m in methods_:
        source = "+".join(split_sources(long.loc[long["method"] == m, "hp_source"])) if "hp_source" in long else ""
        label = methods.label(m) + hp_mark(source, searched)
        row = {"Method": Cell.make(label + (" (reference)" if m == "retrained" else ""))}
        for dataset, model in settings:
            key = (m, dataset, model)
            if key not in index.index:
                row[setting_name(dataset, model)] = Cell.make("–")
                continue
            r = index.loc[key]
            value = r[f"{column}_mean"]
            diverged = bool(r.get("diverged", False))
            is_best = False
            if best and m not in scores.REFERENCES and not diverged:
                others = long[(long["dataset"] == dataset) & (long["model"] == model)
                              & ~long["method"].isin(scores.REFERENCES) & ~_diverged(long)][f"{column}_mean"]
                is_best = bool(np.isclose(value, others.max() if best == "max" else others.min()))
            text = point_ci(value, r[f"{column}_ci"], digits)
            text = diverged_label(text, r) if diverged else text
            row[setting_name(dataset, model)] = Cell.make(text, is_best)
        rows.append(row)
    return pd.DataFrame(rows)


def write_rte_table(metrics_csv, out_csv, out_md, out_tex) -> pd.DataFrame:
    frame = scores.read_metrics(metrics_csv)
    long = rte_table(scores.summary(frame))
    write_csv(long, out_csv)
    settings = settings_of(long)
    na = scores.not_applicable(metrics_csv)
    rte = with_na(_wide(long, "RTE", settings, digits=1, best="max"), na_labels(na))
    seconds = with_na(_wide(long, "seconds", settings, best="min"), na_labels(na))
    n = int(long["n_seeds"].min()) if len(long) else 0
    md = [f"# {RTE_TITLE}\n", f"Point ± 95 % t-CI half-width over seeds (at least {n} per entry); "
          "fastest method per setting in bold. Methods sorted by geometric-mean RTE over settings.\n",
          "## RTE\n", markdown(rte), "## Unlearning seconds (retrained: retraining seconds)\n", markdown(seconds),
          "\nOnly the unlearning call is timed (not data loading). RTE is mean retraining seconds / mean "
          "unlearning seconds per setting; > 1 means faster than retraining.\n"]
    notes = flag_notes(frame, long) + na_notes(na)
    md += [f"\n{note}\n" for note in notes]
    io.write_text(out_md, "\n".join(md))
    io.write_text(out_tex, latex([("RTE (higher is faster)", rte), ("Unlearning seconds", seconds)],
                                 " ".join([RTE_TITLE + "; " + CI_NOTE + "."] + notes), "tab:rte"))
    return long


# --- rankings --------------------------------------------------------------------------------

RANK_TITLE = "Rankings by RetDev (lower is better), Indisc (higher) breaking ties"


def rankings_tables(metrics_csv, frame: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = scores.read_metrics(metrics_csv) if frame is None else frame
    ranks = scores.rankings(scores.summary(frame), scores.per_seed(frame))
    return ranks, scores.mean_ranks(ranks)


def rankings_wide(ranks: pd.DataFrame, means: pd.DataFrame, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rankings table; `paper`, the paper's 18's own mean ranks, adds their column."""
    settings = settings_of(ranks)
    searched = _searched(ranks)
    models_ = list(dict.fromkeys(ranks["model"]))
    index = ranks.set_index(["method", "dataset", "model"])
    # a mean rank over a setting where the method diverged is never bold, whatever the others are
    diverged_somewhere = _diverged(ranks).groupby(ranks["method"]).any()
    clean = means[~means["method"].map(diverged_somewhere).fillna(False).astype(bool)]
    best_mean = clean["mean_rank"].min() if len(clean) else np.nan
    rows = []
    for _, m in means.iterrows():
        row = {"Method": Cell.make(methods.label(m["method"]))}
        for dataset, model in settings:
            key = (m["method"], dataset, model)
            if key not in index.index:
                row[setting_name(dataset, model)] = Cell.make("–")
                continue
            r = index.loc[key]
            text = fmt_rank(r["rank"])
            if "seed_rank_mean" in r and not is_missing(r["seed_rank_mean"]):
                text += f" ({point_ci(r['seed_rank_mean'], r['seed_rank_ci'], 1)})"
            text += hp_mark(r.get("hp_source"), searched)
            diverged = bool(r.get("diverged", False))
            if diverged:
                text += f" {DIVERGED}"
            row[setting_name(dataset, model)] = Cell.make(text, r["rank"] == 1 and not diverged)
        if len(models_) > 1:
            for model in models_:
                row[f"mean rank {model}"] = Cell.make(point_ci(m[f"mean_rank_{model}"], m[f"ci_{model}"], 1))
        bold = not diverged_somewhere.get(m["method"], False) and m["mean_rank"] == best_mean
        row["mean rank (all)"] = Cell.make(point_ci(m["mean_rank"], m["ci"], 1), bool(bold))
        if paper is not None:
            row[PAPER_RANK] = paper_rank_cell(paper, m["method"], point_ci,
                                              set(diverged_somewhere[diverged_somewhere].index))
        rows.append(row)
    return pd.DataFrame(rows)


def write_rankings_table(metrics_csv, out_csv, out_means_csv, out_md, out_tex) -> pd.DataFrame:
    frame = scores.read_metrics(metrics_csv)
    ranks, means = rankings_tables(metrics_csv, frame)
    write_csv(ranks, out_csv)
    write_csv(means, out_means_csv)
    only_paper = paper_frame(frame)
    paper = None if only_paper is None else rankings_tables(None, only_paper)[1]
    na = scores.not_applicable(metrics_csv)
    wide = with_na(rankings_wide(ranks, means, paper), na_labels(na))
    note = ("Each setting column: the method's rank among the unlearning methods by the point estimates "
            "(RetDev compared at 3 decimals, ties broken by higher Indisc), then in brackets its mean rank "
            "when the same ranking is done seed by seed ± 95 % t-CI over seeds: a wide bracket means single "
            "seeds would rank the method very differently. Mean-rank columns: mean over the settings of that "
            "architecture (and over all settings) ± 95 % t-CI over those settings (none from one setting). "
            "Sorted by the overall mean rank; the original and retrained references are not ranked. "
            "'diverged': non-finite outputs on some seed; such a method ranks below every method that did not "
            "diverge, diverged methods among themselves by RetDev.\n")
    notes = flag_notes(frame, ranks) + na_notes(na) + ([PAPER_RANK_NOTE] if paper is not None else [])
    io.write_text(out_md, f"# {RANK_TITLE}\n\n{note}\n" + markdown(wide) + "".join(f"\n{n}\n" for n in notes))
    io.write_text(out_tex, latex([(None, wide)], " ".join(
        [RANK_TITLE + " (brackets: per-seed mean rank; " + CI_NOTE + ")."] + notes), "tab:rankings"))
    return ranks


# ----------------------------------------------------------------------------- U-LiRA


def kind_order(kinds: Sequence[str]) -> list[str]:
    """retrained, original, then methods in the paper's order."""
    rank = {m: i for i, m in enumerate(("retrained", "original") + tuple(methods.names()))}
    return sorted(kinds, key=lambda k: (rank.get(k, len(rank)), k))


def kind_label(kind: str) -> str:
    return {"retrained": "Retrained (reference)", "original": "Original (no unlearning)"}.get(kind, methods.label(kind))


ULIRA_COLUMNS = [("accuracy", "Acc. (P>0.5)"), ("best_balanced_accuracy", "Best bal. acc."), ("auc", "AUC"),
                 ("tpr_at_1pct_fpr", "TPR@1%FPR"), ("tpr_at_0_1pct_fpr", "TPR@0.1%FPR"),
                 ("mean_p_forgotten", "mean P forgotten"), ("mean_p_never_seen", "mean P never seen"),
                 ("forget_acc", "FA"), ("out_acc", "OUT acc.")]


def ulira_empty_notes(table: pd.DataFrame) -> list[str]:
    """Why a row has no attack pairs (its metrics are then "–")."""
    notes = []
    for _, r in table.iterrows():
        if int(r["n_forgotten"]) and int(r["n_never_seen"]):
            continue
        unscored = r.get("n_unscored", math.nan)
        side = "forgotten" if not int(r["n_forgotten"]) else "never-seen"
        if side == "never-seen" and r.get("statistic") == "correctness" and not r.get("holdout", True):
            notes.append(f"{kind_label(r['method'])}: the reference's procedure scores forgotten examples "
                         "only, so the metrics that need never-seen ones are \"–\".\n")
            continue
        notes.append(
            f"{kind_label(r['method'])}: no {side} pairs, so no attack metrics. "
            + (f"{int(unscored)} target pairs were left unscored: " if not pd.isna(unscored) else "")
            + "an example is scored only where the fits hold a forgotten and a never-seen value of it "
              "(from the other splits when each target split is held out); the bank is too small for "
              "that, raise ulira.splits or ulira.forget_sets.\n")
    return notes


def write_ulira_table(json_paths: Sequence, out_csv, out_md) -> pd.DataFrame:
    """results/tables/ulira.{csv,md} from the attack jobs' metrics JSONs."""
    rows = [io.read_json(p) for p in json_paths]
    table = pd.DataFrame(rows).rename(columns={"kind": "method"})
    order = kind_order(list(table["method"]))
    table = table.set_index("method").loc[order].reset_index()
    front = ["dataset", "model", "method"]
    table = table[front + [c for c in table.columns if c not in front]]
    with io.atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    first = rows[0]
    lines = [f"# U-LiRA: {first['dataset']} / {first.get('model', '')}\n",
             f"{first['splits']} splits x {first['forget_sets']} forget sets; statistic `{first['statistic']}`; "
             f"per-example variance from {first['min_samples']} values on a side, global below; "
             + ("each target split scored with fits over the other splits. " if first["holdout"]
                else "fits include the scored models (the reference implementation's design). ")
             + "Accuracy at P > 0.5 is balanced (forgotten and never-seen examples weigh equally): "
               "0.5 accuracy / AUC = forgotten examples look never seen. AUC ± std over target models. "
               "FA: accuracy on the forget set; OUT acc.: on the never-seen half.\n"]
    shown = []
    for _, r in table.iterrows():
        row = {"Method": kind_label(r["method"])}
        for key, head in ULIRA_COLUMNS:
            value = r.get(key, math.nan)
            if key == "auc" and not math.isnan(r.get("auc_std", math.nan)):
                row[head] = f"{value:.3f} ± {r['auc_std']:.3f}"
            else:
                row[head] = "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
        row["pairs (forgotten / never seen)"] = f"{int(r['n_forgotten'])} / {int(r['n_never_seen'])}"
        shown.append(row)
    lines.append(pd.DataFrame(shown).to_markdown(index=False) + "\n")
    lines += ulira_empty_notes(table)
    io.write_text(out_md, "\n".join(lines + methods.legend(table["method"])))
    print(table.to_string())
    return table
