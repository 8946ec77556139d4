"""Which methods a table shows, and how (docs/methods.md#beyond-the-paper): "n/a" rows,
with the reason in a footnote, for a method that does not apply to the run's forgetting
scenario (metrics.csv rows with `applicable` False: never ranked or plotted), and the
paper's 18 ranked among themselves beside the full ranking when the run holds methods
beyond them (each marked by `methods.label`, explained by `methods.legend`)."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from .. import methods, scores
from .formatting import Cell

NA = "n/a"
PAPER_RANK = "mean rank (paper's 18)"
PAPER_RANK_NOTE = (f"'{PAPER_RANK}': the mean rank over all settings when only the paper's 18 methods are "
                   f"ranked, as in the paper (the methods beyond it, marked {methods.MARK}, left out); empty for "
                   "those methods.")


def na_notes(na: pd.DataFrame) -> list[str]:
    """The footnote naming each method that does not apply (`scores.not_applicable`
    rows) with its reason; none when every method applies."""
    if na.empty:
        return []
    first = na.drop_duplicates("method")
    listed = "; ".join(f"{methods.label(m)}: {r}" for m, r in zip(first["method"], first["na_reason"]))
    return [f"{NA}: not applicable to this run's forgetting scenario, so not run, ranked or plotted ({listed})."]


def na_labels(na: pd.DataFrame, dataset: str | None = None, model: str | None = None) -> list[str]:
    """Labels of the methods that do not apply (in one setting, when given)."""
    if dataset is not None:
        na = na[(na["dataset"] == dataset) & (na["model"] == model)]
    return [methods.label(m) for m in dict.fromkeys(na["method"])]


def with_na(display: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """`display` (Cells, a Method column) with one row per label reading n/a throughout."""
    if not len(labels) or display.empty:
        return display
    rows = [{c: Cell.make(label if c == "Method" else NA) for c in display.columns} for label in labels]
    return pd.concat([display, pd.DataFrame(rows)], ignore_index=True)


def paper_frame(frame: pd.DataFrame) -> pd.DataFrame | None:
    """The metrics rows of the references and the paper's 18, when `frame` also holds
    methods beyond them and some of the 18 (else None: its ranking is the paper's)."""
    ranked = frame.loc[~frame["method"].isin(scores.REFERENCES), "method"]
    inside = ranked.map(methods.in_paper)
    if inside.all() or not inside.any():
        return None
    keep = frame["method"].isin(scores.REFERENCES) | frame["method"].map(methods.in_paper)
    return frame[keep].reset_index(drop=True)


def paper_rank_cell(paper_means: pd.DataFrame, method: str, point_ci, diverged=frozenset()) -> Cell:
    """A method's mean rank among the paper's 18 (bold for the best of those that never
    diverged, so a diverged value is never bold); empty beyond them."""
    p = paper_means.set_index("method")
    if method not in p.index:
        return Cell.make("")
    clean = p.loc[[m for m in p.index if m not in diverged], "mean_rank"]
    best = method not in diverged and len(clean) and p.loc[method, "mean_rank"] == clean.min()
    return Cell.make(point_ci(p.loc[method, "mean_rank"], p.loc[method, "ci"], 1), bool(best))
