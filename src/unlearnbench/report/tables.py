"""Tables as CSV (full precision), Markdown and LaTeX (booktabs), from results/metrics.csv.

Every displayed entry is `point ± h`, h the half-width of the 95 % t-based confidence
interval over seeds (scores.py says how it is computed); the CSVs also keep the std,
the interval bounds and the number of seeds.
"""

from __future__ import annotations

import json
import math
import re
from typing import Sequence

import numpy as np
import pandas as pd

from .. import io, methods, scores, search

MAIN_COLUMNS = [("RA", 3), ("FA", 3), ("TA", 3), ("RR", 3), ("FR", 3), ("TR", 3), ("RetDev", 3),
                ("Indisc", 3), ("test_MIA", 3), ("RTE", 1)]
HEADERS = {"test_MIA": "test MIA"}
# best value per setting (among unlearning methods) is printed in bold
BEST = {"RetDev": "min", "Indisc": "max", "RTE": "max"}
CI_NOTE = "± = half-width of the 95 % t-based confidence interval over seeds"
DIVERGED = "diverged"
# scores whose value is undefined for a model with non-finite outputs (NaN in the CSVs)
UNDEFINED_WHEN_DIVERGED = {"Indisc", "test_MIA"}
DIVERGED_NOTE = ("(diverged k/n): on k of n seeds the model gave non-finite outputs (on the share of evaluated "
                 "rows given in main.csv's nonfinite_fraction); those rows count as wrong predictions, its MIA and "
                 "Indisc are undefined (shown as 'diverged'), it is never marked best and ranks below every method "
                 "that did not diverge.")
LATEX_PREAMBLE = "% needs \\usepackage{booktabs} and \\usepackage{graphicx}\n"


# --- cells ---------------------------------------------------------------------------------

def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x)


def decimals_for(x: float, significant: int = 3, most: int = 3) -> int:
    """Decimals that show `significant` digits of |x| (at most `most`)."""
    if _missing(x) or x == 0:
        return min(2, most)
    return int(min(most, max(0, significant - 1 - math.floor(math.log10(abs(x))))))


def point_ci(point, half, digits: int | None = None) -> str:
    """'0.017 ± 0.010'; the point alone without an interval; '–' without a point."""
    if _missing(point):
        return "–"
    digits = decimals_for(point) if digits is None else digits
    if _missing(half):
        return f"{point:.{digits}f}"
    return f"{point:.{digits}f} ± {half:.{digits}f}"


def mean_std(mean: float, std: float, digits: int) -> str:
    if _missing(mean):
        return "–"
    if _missing(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def fmt_rank(x) -> str:
    if _missing(x):
        return "–"
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


class Cell(str):
    """A table cell; `bold` marks the best value of its column."""

    bold = False

    @classmethod
    def make(cls, text: str, bold: bool = False) -> "Cell":
        cell = cls(text)
        cell.bold = bold
        return cell


def md_cell(cell) -> str:
    return f"**{cell}**" if getattr(cell, "bold", False) and cell != "–" else str(cell)


# LaTeX's special characters and the symbols our tables print, each replaced in one pass
# (replacing one after another would escape the braces of an earlier replacement).
TEX_REPLACEMENTS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "<": r"$<$", ">": r"$>$",
                    "±": r"$\pm$", "–": "--", "χ²": r"$\chi^2$", "α": r"$\alpha$", "×": r"$\times$"}
_TEX_SPECIAL = re.compile("|".join(map(re.escape, sorted(TEX_REPLACEMENTS, key=len, reverse=True))))


def tex_escape(text: str) -> str:
    return _TEX_SPECIAL.sub(lambda m: TEX_REPLACEMENTS[m[0]], text)


def tex_cell(cell) -> str:
    text = tex_escape(str(cell))
    return rf"\textbf{{{text}}}" if getattr(cell, "bold", False) and cell != "–" else text


def markdown(frame: pd.DataFrame) -> str:
    return frame.map(md_cell).to_markdown(index=False, disable_numparse=True) + "\n"


def latex(blocks: list[tuple[str | None, pd.DataFrame]], caption: str, label: str, first: str = "l") -> str:
    """One booktabs table; each block (title, frame) gets a title row when titled."""
    columns = list(blocks[0][1].columns)
    align = first + "r" * (len(columns) - 1)
    lines = [LATEX_PREAMBLE.rstrip("\n"), r"\begin{table*}[t]", r"\centering", r"\small",
             rf"\caption{{{tex_escape(caption)}}}", rf"\label{{{label}}}", r"\resizebox{\textwidth}{!}{%",
             rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(tex_escape(str(c)) for c in columns) + r" \\"]
    for i, (title, frame) in enumerate(blocks):
        lines.append(r"\midrule")
        if title:
            lines.append(rf"\multicolumn{{{len(columns)}}}{{l}}{{\textit{{{tex_escape(title)}}}}} \\")
            lines.append(r"\midrule")
        for _, row in frame.iterrows():
            lines.append(" & ".join(tex_cell(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table*}", ""]
    return "\n".join(lines)


def setting_name(dataset: str, model: str) -> str:
    return f"{dataset} / {model}"


def settings_of(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys(zip(frame["dataset"], frame["model"])))


def write_csv(frame: pd.DataFrame, path) -> None:
    with io.atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


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
    k = 0 if _missing(k) else int(k)
    return f"{label} ({DIVERGED} {k}/{int(row['n_seeds'])})" if k else label


HP_NOTE = ("Hyperparameters come from the search unless marked: [defaults] = every search trial of the method "
           "failed and it ran with its method defaults (search.on_no_complete_trial: defaults; their epochs are "
           "not capped at E_max); [config] = method defaults with method_params, not searched.")
NO_SEARCH_NOTE = "Hyperparameters: the method defaults with method_params (no search)."


def _sources(values) -> set[str]:
    return {part for v in values if not _missing(v) for part in str(v).split("+")}


def hp_mark(source, searched: bool) -> str:
    """' [defaults]' for a method that ran with its defaults after a failed search,
    ' [config]' for an unsearched method in a run where others were searched."""
    parts = _sources([source])
    if "defaults" in parts:
        return " [defaults]"
    return " [config]" if searched and "config" in parts else ""


def _searched(frame: pd.DataFrame) -> bool:
    return "search" in _sources(frame["hp_source"]) if "hp_source" in frame else False


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
    if "hp_source" in frame and not searched and "config" in _sources(frame["hp_source"]):
        notes.append(NO_SEARCH_NOTE)
    note = conditions_note(frame)
    return notes + ([note] if note else [])


def _best_flags(block: pd.DataFrame, column: str, how: str) -> pd.Series:
    values = block[f"{column}_mean"].where(~block["method"].isin(scores.REFERENCES) & ~_diverged(block))
    if values.isna().all():
        return pd.Series(False, index=block.index)
    target = values.min() if how == "min" else values.max()
    return values.round(6) == round(target, 6)


def main_blocks(table: pd.DataFrame, columns=MAIN_COLUMNS) -> list[tuple[str, pd.DataFrame]]:
    blocks = []
    searched = _searched(table)
    for (dataset, model), block in table.groupby(["dataset", "model"], sort=False):
        n = int(block["n_seeds"].max())
        mixed = [c for c in ("device", "precision") if c in block and len(_sources(block[c])) > 1]
        best = {c: _best_flags(block, c, how) for c, how in BEST.items() if f"{c}_mean" in block}
        rows = []
        for idx, r in block.iterrows():
            row = {"Method": Cell.make(method_label(r["method"], r, searched))}
            for c, d in columns:
                text = point_ci(r[f"{c}_mean"], r.get(f"{c}_ci", np.nan), d)
                if c in UNDEFINED_WHEN_DIVERGED and _missing(r[f"{c}_mean"]) and r.get("diverged", False):
                    text = DIVERGED
                row[HEADERS.get(c, c)] = Cell.make(text, bool(best[c][idx]) if c in best else False)
            rows.append(row)
        mixed_text = "".join(f"; mixed {c}: {'+'.join(sorted(_sources(block[c])))}" for c in mixed)
        blocks.append((f"{setting_name(dataset, model)} ({n} seed{'s' if n != 1 else ''}{mixed_text})",
                       pd.DataFrame(rows)))
    return blocks


def to_markdown(table: pd.DataFrame, columns=MAIN_COLUMNS, title: str = "") -> str:
    parts = [f"# {title}\n"] if title else []
    for name, frame in main_blocks(table, columns):
        parts.append(f"## {name}\n")
        parts.append(markdown(frame))
    return "\n".join(parts)


MAIN_TITLE = ("Main results: point estimate ± 95 % CI half-width over seeds (t-based). "
              "RetDev lower is better; Indisc and RTE higher; best method per column in bold")


def write_main_table(metrics_csv, out_csv, out_md, out_tex=None) -> pd.DataFrame:
    frame = scores.read_metrics(metrics_csv)
    table = order_methods(scores.summary(frame))
    write_csv(table, out_csv)
    notes = flag_notes(frame, table)
    io.write_text(out_md, to_markdown(table, title=MAIN_TITLE) + _main_legend() + "".join(f"\n{n}\n" for n in notes))
    if out_tex:
        io.write_text(out_tex, latex(main_blocks(table), " ".join([MAIN_TITLE + "."] + notes), "tab:main"))
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
        source = "+".join(_sources(long.loc[long["method"] == m, "hp_source"])) if "hp_source" in long else ""
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
    rte = _wide(long, "RTE", settings, digits=1, best="max")
    seconds = _wide(long, "seconds", settings, best="min")
    n = int(long["n_seeds"].min()) if len(long) else 0
    md = [f"# {RTE_TITLE}\n", f"Point ± 95 % t-CI half-width over seeds (at least {n} per entry); "
          "fastest method per setting in bold. Methods sorted by geometric-mean RTE over settings.\n",
          "## RTE\n", markdown(rte), "## Unlearning seconds (retrained: retraining seconds)\n", markdown(seconds),
          "\nOnly the unlearning call is timed (not data loading). RTE is mean retraining seconds / mean "
          "unlearning seconds per setting; > 1 means faster than retraining.\n"]
    notes = flag_notes(frame, long)
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


def rankings_wide(ranks: pd.DataFrame, means: pd.DataFrame) -> pd.DataFrame:
    settings = settings_of(ranks)
    searched = _searched(ranks)
    models_ = list(dict.fromkeys(ranks["model"]))
    index = ranks.set_index(["method", "dataset", "model"])
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
            if "seed_rank_mean" in r and not _missing(r["seed_rank_mean"]):
                text += f" ({point_ci(r['seed_rank_mean'], r['seed_rank_ci'], 1)})"
            text += hp_mark(r.get("hp_source"), searched)
            diverged = bool(r.get("diverged", False))
            if diverged:
                text += f" {DIVERGED}"
            row[setting_name(dataset, model)] = Cell.make(text, r["rank"] == 1 and not diverged)
        if len(models_) > 1:
            for model in models_:
                row[f"mean rank {model}"] = Cell.make(point_ci(m[f"mean_rank_{model}"], m[f"ci_{model}"], 1))
        row["mean rank (all)"] = Cell.make(point_ci(m["mean_rank"], m["ci"], 1), m["mean_rank"] == means["mean_rank"].min())
        rows.append(row)
    return pd.DataFrame(rows)


def write_rankings_table(metrics_csv, out_csv, out_means_csv, out_md, out_tex) -> pd.DataFrame:
    frame = scores.read_metrics(metrics_csv)
    ranks, means = rankings_tables(metrics_csv, frame)
    write_csv(ranks, out_csv)
    write_csv(means, out_means_csv)
    wide = rankings_wide(ranks, means)
    note = ("Each setting column: the method's rank among the unlearning methods by the point estimates "
            "(RetDev compared at 3 decimals, ties broken by higher Indisc), then in brackets its mean rank "
            "when the same ranking is done seed by seed ± 95 % t-CI over seeds: a wide bracket means single "
            "seeds would rank the method very differently. Mean-rank columns: mean over the settings of that "
            "architecture (and over all settings) ± 95 % t-CI over those settings (none from one setting). "
            "Sorted by the overall mean rank; the original and retrained references are not ranked. "
            "'diverged': non-finite outputs on some seed; such a method ranks below every method that did not "
            "diverge, diverged methods among themselves by RetDev.\n")
    notes = flag_notes(frame, ranks)
    io.write_text(out_md, f"# {RANK_TITLE}\n\n{note}\n" + markdown(wide) + "".join(f"\n{n}\n" for n in notes))
    io.write_text(out_tex, latex([(None, wide)], " ".join(
        [RANK_TITLE + " (brackets: per-seed mean rank; " + CI_NOTE + ")."] + notes), "tab:rankings"))
    return ranks


# --- critical difference ---------------------------------------------------------------------

CD_TITLE = "Critical-difference rank comparison across settings (Friedman + Nemenyi)"
CLAIM_BEST = ("msg", "ct")
CLAIM_BASELINE = ("ngplus", ("ga", "srl"))


def cd_analyses(metrics_csv, alpha: float = 0.05, frame: pd.DataFrame | None = None) -> tuple[dict, dict]:
    """(across settings, seeds as blocks) critical-difference analyses of the rankings;
    each method table also counts the blocks where the method diverged and holds its
    hyperparameter sources (`hp_source`, joined over blocks)."""
    frame = scores.read_metrics(metrics_csv) if frame is None else frame
    ranks = scores.rankings(scores.summary(frame))
    settings = scores.critical_difference(scores.rank_matrix(ranks), alpha)
    per = scores.per_seed(frame)
    per = per[~per["method"].isin(scores.REFERENCES)].copy()
    per["rank"] = scores.rank(per, scores.SETTING + ["seed"], by="RetDev", tie="Indisc")
    per["block"] = per["dataset"] + "/" + per["model"] + "/seed" + per["seed"].astype(str)
    seeds = scores.critical_difference(per.pivot(index="block", columns="method", values="rank"), alpha)
    # blocks in which each method diverged (it ranks below the others there)
    for cd, blocks in ((settings, ranks), (seeds, per)):
        count = blocks.groupby("method")["diverged"].sum()
        cd["table"]["diverged_blocks"] = cd["table"]["method"].map(count).fillna(0).astype(int)
        if "hp_source" in blocks:
            sources = blocks.groupby("method")["hp_source"].agg(lambda v: "+".join(sorted(_sources(v))))
            cd["table"]["hp_source"] = cd["table"]["method"].map(sources)
    return settings, seeds


def _fmt_p(p) -> str:
    if _missing(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _p_is(p) -> str:
    """'p = 0.123' or 'p < 0.001'."""
    text = _fmt_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def untestable(cd: dict) -> str | None:
    """Why no pair of methods can differ significantly in `cd`, or None when some can:
    too few blocks or methods, or a critical difference above the largest possible
    mean-rank difference (k - 1)."""
    if _missing(cd["cd"]):
        return "not testable (needs at least 2 blocks and 3 methods)"
    if cd["cd"] > cd["max_difference"]:
        return (f"not testable at this size (CD {cd['cd']:.2f} > largest possible difference "
                f"{cd['max_difference']:.0f})")
    return None


def _numbers(cd: dict) -> dict:
    """The numbers every verdict rests on, as claims-table columns."""
    return {"N blocks": str(cd["n_blocks"]), "k methods": str(cd["k"]),
            "CD": "–" if _missing(cd["cd"]) else f"{cd['cd']:.2f}",
            "largest possible difference": f"{cd['max_difference']:.0f}", "Friedman p": _fmt_p(cd["friedman_p"])}


def claims(cd: dict) -> list[dict]:
    """The paper's claims 1 and 2 as tests on `cd` (see critical_difference.md): each a
    row with the claim, the evidence (mean ranks, places, Nemenyi p-values), the numbers
    of the test (N, k, CD, the largest possible difference, Friedman p) and the verdict,
    which reads "not testable ..." whenever no pair of methods can differ significantly."""
    table = cd["table"].set_index("method")
    blocked = untestable(cd)
    testable = blocked is None
    numbers = _numbers(cd)
    out = []
    present = [m for m in CLAIM_BEST if m in table.index]
    if present:
        parts, ok = [], testable
        for m in present:
            r = table.loc[m]
            parts.append(f"{methods.label(m)}: mean rank {r['mean_rank']:.2f}, place {r['place']:.0f} of {cd['k']}, "
                         f"Nemenyi p vs best {_fmt_p(r['p_vs_best'])}")
            ok = ok and bool(r["top_group"])
        top = int(table["top_group"].sum()) if testable else 0
        if not testable:
            verdict = blocked
        elif ok:
            verdict = (f"consistent: {' and '.join(methods.label(m) for m in present)} "
                       f"{'are' if len(present) > 1 else 'is'} in the top group (not significantly worse than the "
                       f"best-ranked method); the top group holds {top} of {cd['k']} methods")
        else:
            worse = [methods.label(m) for m in present if not table.loc[m, "top_group"]]
            verdict = (f"contradicted: {' and '.join(worse)} {'rank' if len(worse) > 1 else 'ranks'} significantly "
                       "worse than the best-ranked method")
        missing = [methods.label(m) for m in CLAIM_BEST if m not in table.index]
        if missing:
            verdict += f" ({', '.join(missing)} not run)"
        out.append({"claim": "MSG and CT are among the best methods (PAPER claim 1)", "evidence": "; ".join(parts),
                    **numbers, "verdict": verdict})
    lead, others = CLAIM_BASELINE
    if lead in table.index and any(o in table.index for o in others):
        parts, sig, ahead = [], [], []
        for o in (o for o in others if o in table.index):
            p = cd["pvalues"].loc[lead, o] if not _missing(cd["cd"]) else np.nan
            better = table.loc[lead, "mean_rank"] < table.loc[o, "mean_rank"]
            parts.append(f"{methods.label(lead)} {table.loc[lead, 'mean_rank']:.2f} vs {methods.label(o)} "
                         f"{table.loc[o, 'mean_rank']:.2f} (Nemenyi p {_fmt_p(p)})")
            sig.append(bool(better and testable and p < cd["alpha"]))
            ahead.append(methods.label(o) if better else None)
        direction = (f"{methods.label(lead)} ranks ahead of " + " and ".join(a for a in ahead if a)
                     if any(ahead) else f"{methods.label(lead)} does not rank ahead")
        verdict = (f"{blocked} ({direction})" if not testable else f"significant for all ({direction})" if all(sig)
                   else f"significant for {sum(sig)} of {len(sig)} ({direction})" if any(sig)
                   else f"not significant ({direction})")
        out.append({"claim": "tuned NG+ beats GA and SRL (PAPER claim 2)", "evidence": "; ".join(parts),
                    **numbers, "verdict": verdict})
    return out


def _cd_summary(cd: dict, blocks: str) -> str:
    if _missing(cd["cd"]):
        return (f"{blocks}: N = {cd['n_blocks']}, k = {cd['k']} methods: not testable (Friedman and Nemenyi "
                "need at least 2 blocks and 3 methods).")
    reject = cd["friedman_p"] < cd["alpha"] if not _missing(cd["friedman_p"]) else False
    detectable = cd["cd"] < cd["max_difference"]
    return (f"{blocks}: N = {cd['n_blocks']} blocks, k = {cd['k']} methods. Friedman χ² = "
            f"{cd['friedman_chi2']:.2f}, {_p_is(cd['friedman_p'])} ({'rejects' if reject else 'does not reject'} "
            f"'all methods rank alike' at α = {cd['alpha']}). Nemenyi critical difference CD = {cd['cd']:.2f} "
            f"mean-rank units (largest possible difference {cd['max_difference']:.0f}"
            + ("" if detectable else ": no pair can differ significantly") + ").")


def cd_method_table(cd: dict) -> pd.DataFrame:
    t = cd["table"]
    testable = untestable(cd) is None
    top = [g if testable and not _missing(g) else np.nan for g in t["top_group"]]  # no group when untestable
    diverged = t["diverged_blocks"] if "diverged_blocks" in t else pd.Series(0, index=t.index)
    sources = t["hp_source"] if "hp_source" in t else pd.Series("", index=t.index)
    searched = "search" in _sources(sources)
    return pd.DataFrame({
        "Method": [Cell.make(methods.label(m) + hp_mark(h, searched) + (f" ({DIVERGED} in {d} of {n})" if d else ""))
                   for m, d, n, h in zip(t["method"], diverged, t["n_blocks"], sources)],
        "mean rank": [Cell.make(point_ci(a, b, 2), bool(g) if not _missing(g) else False)
                      for a, b, g in zip(t["mean_rank"], t["mean_rank_ci"], top)],
        "place": [Cell.make(f"{p:.0f}") for p in t["place"]],
        "p vs best": [Cell.make(_fmt_p(p)) for p in t["p_vs_best"]],
        "top group": [Cell.make("–" if _missing(g) else ("yes" if g else "no")) for g in top],
        "better than": [Cell.make(str(b)) for b in t["beats"]],
        "worse than": [Cell.make(str(b)) for b in t["beaten_by"]],
    })


def write_cd_table(metrics_csv, out_csv, out_pvalues, out_md, out_tex, alpha: float = 0.05) -> dict:
    frame = scores.read_metrics(metrics_csv)
    cd, cd_seeds = cd_analyses(metrics_csv, alpha, frame)
    table = cd["table"].assign(friedman_chi2=cd["friedman_chi2"], friedman_p=cd["friedman_p"], cd=cd["cd"],
                               alpha=alpha, max_difference=cd["max_difference"], testable=untestable(cd) is None)
    write_csv(table, out_csv)
    with io.atomic_path(out_pvalues) as tmp:
        cd["pvalues"].to_csv(tmp, float_format="%.6g")
    found = claims(cd)
    lines = [f"# {CD_TITLE}\n",
             "Blocks are the (dataset, model) settings; in each, the unlearning methods are ranked by RetDev "
             "(Indisc breaking ties, as in rankings.md). The Friedman test asks whether the methods' mean ranks "
             "differ at all; Nemenyi's post-hoc test compares every pair (p-values in nemenyi_pvalues.csv, from "
             "scikit-posthocs). Two methods whose mean ranks differ by less than the critical difference (CD) "
             "are not significantly different. 'top group' = not significantly worse than the best-ranked method "
             "(none when no pair can differ). A method that diverged in a block ranks below every method that did "
             "not diverge there.\n",
             _cd_summary(cd, "Across settings") + "\n",
             "**Power.** The CD shrinks only with the number of settings N (CD ∝ √(k(k+1)/6N)): with few settings "
             "only very large rank differences are detectable, so 'not significant' here means 'not shown', not "
             "'equal'. The paper's grid has N = 10 settings.\n",
             "## Claims\n", markdown(pd.DataFrame(found)) if found else "The claimed methods were not run.\n",
             "## Methods\n", markdown(cd_method_table(cd)),
             "## Sensitivity: seeds as blocks\n",
             _cd_summary(cd_seeds, "Blocks = setting × seed") + " Seeds of one setting share its data and "
             "hyperparameters, so this has more power but speaks only for these settings.\n"]
    found_seeds = claims(cd_seeds)
    if found_seeds:
        lines.append(markdown(pd.DataFrame(found_seeds)))
    notes = flag_notes(frame, cd["table"].assign(diverged=cd["table"]["diverged_blocks"] > 0))
    lines += [f"\n{n}\n" for n in notes]
    io.write_text(out_md, "\n".join(lines))
    caption = (f"{CD_TITLE}: N = {cd['n_blocks']} settings, Friedman {_p_is(cd['friedman_p'])}, "
               f"CD = {cd['cd']:.2f}; mean rank ± 95 % t-CI over settings; "
               + (untestable(cd) if untestable(cd) else "bold: top group") + ". " + " ".join(notes))
    io.write_text(out_tex, latex([(None, cd_method_table(cd))], caption, "tab:critical-difference"))
    return cd


# ----------------------------------------------------------------------------- chosen hyperparameters


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def write_hyperparameters_table(best_jsons: Sequence, out_csv, out_md) -> pd.DataFrame:
    """results/tables/hyperparameters.{csv,md}: the chosen setting per dataset, model and
    method (searched parameters; the rest are the method defaults)."""
    rows = []
    for path in best_jsons:
        best = io.read_json(path)
        objectives = best["objectives"] or dict.fromkeys(search.OBJECTIVES)  # None: no study completed a trial
        rows.append({"dataset": best.get("dataset"), "model": best.get("model"), "method": best["method"],
                     "search_seed": best["seed"], "trial": best["trial"], "norm": best["norm"],
                     **objectives, "params": json.dumps(best["params"], sort_keys=True)})
    columns = ["dataset", "model", "method", "search_seed", "trial", "norm", *search.OBJECTIVES, "params"]
    table = pd.DataFrame(rows, columns=columns)
    rank = {m: i for i, m in enumerate(methods.names())}
    table = (table.assign(_rank=table["method"].map(rank)).sort_values(["dataset", "model", "_rank"], kind="stable")
             .drop(columns="_rank").reset_index(drop=True))
    with io.atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    parts = ["# Chosen hyperparameters (smallest norm of the 4 search objectives over the search seeds; "
             "parameters not listed keep the method defaults; trial \"defaults\": the method defaults won)\n"]
    for (dataset, model), block in table.groupby(["dataset", "model"], sort=False):
        shown = pd.DataFrame({
            "Method": [methods.label(m) for m in block["method"]],
            "Setting": [", ".join(f"{k}={_format_value(v)}" for k, v in json.loads(p).items()) or "(defaults)"
                        for p in block["params"]],
            "Seed": ["-" if pd.isna(v) else str(int(v)) for v in block["search_seed"]],
            "Trial": ["none complete: defaults" if pd.isna(t) else "defaults" if t == search.DEFAULTS_NUMBER
                      else str(int(t)) for t in block["trial"]],
            "Norm": ["-" if pd.isna(v) else f"{v:.4f}" for v in block["norm"]]})
        parts.append(f"## {dataset} / {model}\n")
        parts.append(shown.to_markdown(index=False) + "\n")
    io.write_text(out_md, "\n".join(parts))
    return table


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
    io.write_text(out_md, "\n".join(lines))
    print(table.to_string())
    return table
