"""The LaTeX tables: escaping with known answers, and every .tex table the workflow ships
compiled by pdflatex inside a document, with method, dataset and model names holding
LaTeX's special characters."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from unlearnbench.report import critical_difference, formatting, tables

from conftest import REPO
from synthetic import synthetic_metrics

# names holding every character LaTeX treats specially (`_`, `%`, `&`, `+`, `\` ...)
ODD_METHODS = ["ft", "a_b", "50%", "x&y", "ng+", "back\\slash", "{brace}", "#1", "~t", "^h", "$d"]
ODD_SETTINGS = (("cifar_10", "res&net"), ("mn%ist", "x\\y"), ("digits", "small+cnn"))
WRITERS = {  # each shipped .tex table and the function that writes it
    "main.tex": lambda csv, d: tables.write_main_table(csv, d / "main.csv", d / "main.md", d / "main.tex"),
    "rte.tex": lambda csv, d: tables.write_rte_table(csv, d / "rte.csv", d / "rte.md", d / "rte.tex"),
    "rankings.tex": lambda csv, d: tables.write_rankings_table(csv, d / "rankings.csv", d / "mean_ranks.csv",
                                                               d / "rankings.md", d / "rankings.tex"),
    "critical_difference.tex": lambda csv, d: critical_difference.write_cd_table(
        csv, d / "cd.csv", d / "pvalues.csv", d / "cd.md", d / "critical_difference.tex"),
}
DOCUMENT = r"""\documentclass{article}
\usepackage{booktabs}
\usepackage{graphicx}
\begin{document}
%s
\end{document}
"""


@pytest.mark.parametrize("text, expected", [
    ("a\\b", r"a\textbackslash{}b"),
    ("{x}", r"\{x\}"),
    ("\\{", r"\textbackslash{}\{"),
    ("a_b & 5 % #1 $2", r"a\_b \& 5 \% \#1 \$2"),
    ("~^", r"\textasciitilde{}\^{}"),
    ("p < 0.001 ± 5 % a_b", r"p $<$ 0.001 $\pm$ 5 \% a\_b"),
    ("χ² α × –", r"$\chi^2$ $\alpha$ $\times$ --"),
    ("NG+", "NG+"),
    ("ℓ1-sparse† SSD†", r"$\ell$1-sparse\textdagger{} SSD\textdagger{}"),
])
def test_tex_escape_known_answers(text, expected):
    assert formatting.tex_escape(text) == expected


def test_tex_cell_bold():
    assert formatting.tex_cell(formatting.Cell.make("a_b", bold=True)) == r"\textbf{a\_b}"
    assert formatting.tex_cell(formatting.Cell.make("–", bold=True)) == "--"


def test_every_shipped_tex_table_is_tested():
    shipped = {Path(p).name for smk in (REPO / "workflow/rules").glob("*.smk")
               for p in re.findall(r'"(results/tables/[^"]+\.tex)"', smk.read_text())}
    assert shipped == set(WRITERS)


@pytest.fixture(scope="module")
def odd_tables(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tex")
    csv = out / "metrics.csv"
    synthetic_metrics(settings=ODD_SETTINGS, seeds=(0, 1, 2), methods=ODD_METHODS, rng_seed=5).to_csv(csv, index=False)
    for write in WRITERS.values():
        write(csv, out)
    return out


def test_odd_names_are_escaped(odd_tables):
    tex = (odd_tables / "main.tex").read_text()
    for escaped in [r"a\_b", r"50\%", r"x\&y", "ng+", r"back\textbackslash{}slash", r"\{brace\}", r"\#1",
                    r"\textasciitilde{}t", r"\^{}h", r"\$d", r"cifar\_10 / res\&net", r"mn\%ist / x\textbackslash{}y"]:
        assert escaped in tex, escaped


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex not installed (Debian: apt-get install texlive-latex-base "
                           "texlive-latex-recommended)")
@pytest.mark.parametrize("name", sorted(WRITERS))
def test_shipped_tex_table_compiles(odd_tables, name, tmp_path):
    (tmp_path / "doc.tex").write_text(DOCUMENT % (odd_tables / name).read_text())
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    log = (tmp_path / "doc.log").read_text(errors="replace") if (tmp_path / "doc.log").exists() else proc.stdout
    assert proc.returncode == 0, log[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 0
    assert "Missing character" not in log and "Undefined control sequence" not in log, log[-3000:]
