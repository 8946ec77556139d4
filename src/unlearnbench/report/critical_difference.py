"""The critical-difference table (Friedman + Nemenyi over settings and over seeds) and the
paper's claims checked against it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import io, methods, scores
from .formatting import Cell, is_missing, latex, markdown, point_ci, write_csv
from .method_scope import na_labels, na_notes, paper_frame, with_na
from .tables import DIVERGED, flag_notes, hp_mark, split_sources
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
            sources = blocks.groupby("method")["hp_source"].agg(lambda v: "+".join(sorted(split_sources(v))))
            cd["table"]["hp_source"] = cd["table"]["method"].map(sources)
    return settings, seeds


def _fmt_p(p) -> str:
    if is_missing(p):
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
    if is_missing(cd["cd"]):
        return "not testable (needs at least 2 blocks and 3 methods)"
    if cd["cd"] > cd["max_difference"]:
        return (f"not testable at this size (CD {cd['cd']:.2f} > largest possible difference "
                f"{cd['max_difference']:.0f})")
    return None


def _numbers(cd: dict) -> dict:
    """The numbers every verdict rests on, as claims-table columns."""
    return {"N blocks": str(cd["n_blocks"]), "k methods": str(cd["k"]),
            "CD": "–" if is_missing(cd["cd"]) else f"{cd['cd']:.2f}",
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
            # in a top group holding most of the field, membership says little: "not contradicted"
            word = "consistent" if top <= cd["k"] / 2 else "not contradicted"
            verdict = (f"{word}: {' and '.join(methods.label(m) for m in present)} "
                       f"{'are' if len(present) > 1 else 'is'} in the top group (not significantly worse than the "
                       f"best-ranked method); the top group holds {top} of {cd['k']} methods "
                       f"({100 * top / cd['k']:.0f} %)")
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
            p = cd["pvalues"].loc[lead, o] if not is_missing(cd["cd"]) else np.nan
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
    if is_missing(cd["cd"]):
        return (f"{blocks}: N = {cd['n_blocks']}, k = {cd['k']} methods: not testable (Friedman and Nemenyi "
                "need at least 2 blocks and 3 methods).")
    reject = cd["friedman_p"] < cd["alpha"] if not is_missing(cd["friedman_p"]) else False
    detectable = cd["cd"] < cd["max_difference"]
    return (f"{blocks}: N = {cd['n_blocks']} blocks, k = {cd['k']} methods. Friedman χ² = "
            f"{cd['friedman_chi2']:.2f}, {_p_is(cd['friedman_p'])} ({'rejects' if reject else 'does not reject'} "
            f"'all methods rank alike' at α = {cd['alpha']}). Nemenyi critical difference CD = {cd['cd']:.2f} "
            f"mean-rank units (largest possible difference {cd['max_difference']:.0f}"
            + ("" if detectable else ": no pair can differ significantly") + ").")


def cd_method_table(cd: dict) -> pd.DataFrame:
    t = cd["table"]
    testable = untestable(cd) is None
    top = [g if testable and not is_missing(g) else np.nan for g in t["top_group"]]  # no group when untestable
    diverged = t["diverged_blocks"] if "diverged_blocks" in t else pd.Series(0, index=t.index)
    sources = t["hp_source"] if "hp_source" in t else pd.Series("", index=t.index)
    searched = "search" in split_sources(sources)
    return pd.DataFrame({
        "Method": [Cell.make(methods.label(m) + hp_mark(h, searched) + (f" ({DIVERGED} in {d} of {n})" if d else ""))
                   for m, d, n, h in zip(t["method"], diverged, t["n_blocks"], sources)],
        # bold: the top group, but never a method that diverged in some block
        "mean rank": [Cell.make(point_ci(a, b, 2), bool(g) and not d if not is_missing(g) else False)
                      for a, b, g, d in zip(t["mean_rank"], t["mean_rank_ci"], top, diverged)],
        "place": [Cell.make(f"{p:.0f}") for p in t["place"]],
        "p vs best": [Cell.make(_fmt_p(p)) for p in t["p_vs_best"]],
        "top group": [Cell.make("–" if is_missing(g) else ("yes" if g else "no")) for g in top],
        "better than": [Cell.make(str(b)) for b in t["beats"]],
        "worse than": [Cell.make(str(b)) for b in t["beaten_by"]],
    })


CLAIMS_AMONG_PAPER = ("The paper's claims are about its 18 methods: they are checked on the analysis of those "
                      f"18 alone (the methods beyond them, marked {methods.MARK}, left out); the Methods table "
                      "below ranks every method.\n")


def write_cd_table(metrics_csv, out_csv, out_pvalues, out_md, out_tex, alpha: float = 0.05) -> dict:
    frame = scores.read_metrics(metrics_csv)
    na = scores.not_applicable(metrics_csv)
    cd, cd_seeds = cd_analyses(metrics_csv, alpha, frame)
    table = cd["table"].assign(friedman_chi2=cd["friedman_chi2"], friedman_p=cd["friedman_p"], cd=cd["cd"],
                               alpha=alpha, max_difference=cd["max_difference"], testable=untestable(cd) is None)
    write_csv(table, out_csv)
    with io.atomic_path(out_pvalues) as tmp:
        cd["pvalues"].to_csv(tmp, float_format="%.6g")
    # the paper's claims are about its 18: checked among them when the run holds others
    only_paper = paper_frame(frame)
    claim_cd, claim_seeds = (cd, cd_seeds) if only_paper is None else cd_analyses(None, alpha, only_paper)
    found = claims(claim_cd)
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
             "## Claims\n", *([] if only_paper is None else [CLAIMS_AMONG_PAPER]),
             markdown(pd.DataFrame(found)) if found else "The claimed methods were not run.\n",
             "## Methods\n", markdown(with_na(cd_method_table(cd), na_labels(na))),
             "## Sensitivity: seeds as blocks\n",
             _cd_summary(cd_seeds, "Blocks = setting × seed") + " Seeds of one setting share its data and "
             "hyperparameters, so this has more power but speaks only for these settings.\n"]
    found_seeds = claims(claim_seeds)
    if found_seeds:
        lines.append(markdown(pd.DataFrame(found_seeds)))
    notes = flag_notes(frame, cd["table"].assign(diverged=cd["table"]["diverged_blocks"] > 0)) + na_notes(na)
    lines += [f"\n{n}\n" for n in notes]
    io.write_text(out_md, "\n".join(lines))
    caption = (f"{CD_TITLE}: N = {cd['n_blocks']} settings, Friedman {_p_is(cd['friedman_p'])}, "
               f"CD = {cd['cd']:.2f}; mean rank ± 95 % t-CI over settings; "
               + (untestable(cd) if untestable(cd) else "bold: the top group's methods that never diverged") + ". "
               + " ".join(notes))
    io.write_text(out_tex, latex([(None, with_na(cd_method_table(cd), na_labels(na)))], caption,
                                 "tab:critical-difference"))
    return cd
