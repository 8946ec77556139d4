"""Formatting of table cells and whole tables: numbers as `point ± h`, Markdown, LaTeX (booktabs),
and CSVs written atomically. The table families are in tables.py and critical_difference.py."""

from __future__ import annotations

import math
import re

import pandas as pd

from .. import io

CI_NOTE = "± = half-width of the 95 % t-based confidence interval over seeds"
LATEX_PREAMBLE = "% needs \\usepackage{booktabs} and \\usepackage{graphicx}\n"


# --- cells ---------------------------------------------------------------------------------

def is_missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x)


def decimals_for(x: float, significant: int = 3, most: int = 3) -> int:
    """Decimals that show `significant` digits of |x| (at most `most`)."""
    if is_missing(x) or x == 0:
        return min(2, most)
    return int(min(most, max(0, significant - 1 - math.floor(math.log10(abs(x))))))


def point_ci(point, half, digits: int | None = None) -> str:
    """'0.017 ± 0.010'; the point alone without an interval; '–' without a point."""
    if is_missing(point):
        return "–"
    digits = decimals_for(point) if digits is None else digits
    if is_missing(half):
        return f"{point:.{digits}f}"
    return f"{point:.{digits}f} ± {half:.{digits}f}"


def mean_std(mean: float, std: float, digits: int) -> str:
    if is_missing(mean):
        return "–"
    if is_missing(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def fmt_rank(x) -> str:
    if is_missing(x):
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
                    "±": r"$\pm$", "–": "--", "χ²": r"$\chi^2$", "α": r"$\alpha$", "×": r"$\times$",
                    "†": r"\textdagger{}", "ℓ": r"$\ell$"}
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


def write_csv(frame: pd.DataFrame, path) -> None:
    with io.atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
