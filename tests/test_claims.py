"""The paper-claim verdicts respect the power of the test.

With k methods the mean ranks can differ by at most k - 1; when Nemenyi's critical
difference exceeds that, no pair can differ significantly and every verdict must say
"not testable at this size", with the numbers behind it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from unlearnbench import methods, scores
from unlearnbench.report import critical_difference
from synthetic import synthetic_metrics


def default_sized_matrix(n_blocks: int = 2) -> pd.DataFrame:
    """The paper's 18 methods on 2 settings; MSG and CT last in both."""
    names = list(methods.PAPER_METHODS)
    order = [m for m in names if m not in ("msg", "ct")] + ["msg", "ct"]
    return pd.DataFrame([{m: float(i + 1) for i, m in enumerate(order)}] * n_blocks)


def test_cd_above_the_largest_possible_difference_is_not_testable():
    cd = scores.critical_difference(default_sized_matrix())
    assert cd["k"] == 18 and cd["max_difference"] == 17
    assert cd["cd"] == pytest.approx(18.6, abs=0.05) and cd["cd"] > cd["max_difference"]
    assert (cd["pvalues"].to_numpy() >= cd["alpha"]).all()  # indeed no pair differs
    found = {c["claim"]: c for c in critical_difference.claims(cd)}
    claim1 = next(c for k, c in found.items() if "claim 1" in k)
    claim2 = next(c for k, c in found.items() if "claim 2" in k)
    want = f"not testable at this size (CD {cd['cd']:.2f} > largest possible difference 17)"
    assert claim1["verdict"] == want  # not "consistent", though MSG and CT rank last
    assert claim2["verdict"].startswith(want)
    for claim in (claim1, claim2):  # the numbers behind the verdict
        assert claim["N blocks"] == "2" and claim["k methods"] == "18"
        assert claim["CD"] == f"{cd['cd']:.2f}" and claim["largest possible difference"] == "17"
        assert claim["Friedman p"] == critical_difference._fmt_p(cd["friedman_p"])
    assert "mean rank 17.50" in claim1["evidence"] or "mean rank 18.00" in claim1["evidence"]
    # the method table shows no top group either
    assert {str(c) for c in critical_difference.cd_method_table(cd)["top group"]} == {"–"}


def test_enough_blocks_make_the_claim_testable_and_contradicted():
    cd = scores.critical_difference(default_sized_matrix(n_blocks=40))
    assert cd["cd"] < cd["max_difference"]
    claim1 = critical_difference.claims(cd)[0]
    assert claim1["verdict"].startswith("contradicted") and claim1["CD"] == f"{cd['cd']:.2f}"


def test_too_few_blocks_say_why():
    cd = scores.critical_difference(default_sized_matrix(n_blocks=1))
    assert math.isnan(cd["cd"])
    claim1 = critical_difference.claims(cd)[0]
    assert claim1["verdict"].startswith("not testable (needs at least 2 blocks") and claim1["CD"] == "–"


def test_claims_table_file_shows_the_numbers(tmp_path):
    frame = synthetic_metrics(settings=(("digits", "smallcnn"), ("digits", "resnet18")), seeds=(0, 1, 2),
                              methods=list(methods.PAPER_METHODS), rng_seed=1)
    path = tmp_path / "metrics.csv"
    frame.to_csv(path, index=False)
    critical_difference.write_cd_table(path, tmp_path / "cd.csv", tmp_path / "p.csv", tmp_path / "cd.md", tmp_path / "cd.tex")
    md = (tmp_path / "cd.md").read_text()
    claims_part = md.split("## Claims")[1].split("## Methods")[0]
    header = next(line for line in claims_part.splitlines() if line.startswith("| claim"))
    for column in ("N blocks", "k methods", "CD", "largest possible difference", "Friedman p", "verdict"):
        assert column in header
    assert "not testable at this size (CD 18.6" in claims_part and "consistent" not in claims_part
    table = pd.read_csv(tmp_path / "cd.csv")
    assert not table["testable"].any() and (table["max_difference"] == 17).all()
    assert np.isfinite(table["cd"]).all()


def test_a_top_group_of_nearly_every_method_only_does_not_contradict_claim_1():
    """MSG 11th and CT 15th of 18, in a top group of 16 of 18, were
    called "consistent". A verdict's word matches its evidence: "not contradicted" with
    the share when the top group is most of the field, "consistent" when it is small."""
    names = list(methods.PAPER_METHODS)
    rng = np.random.default_rng(0)
    # 18 methods, 4 blocks; the two worst methods far behind, the 16 others shuffled,
    # MSG and CT placed 11th and 15th in every block
    rest = [m for m in names if m not in ("msg", "ct")]
    rows = []
    for _ in range(4):
        order = list(rng.permutation(rest[:14]))
        order.insert(10, "msg")
        order.insert(14, "ct")
        rows.append({m: float(i + 1) for i, m in enumerate(order + rest[14:])})
    cd = scores.critical_difference(pd.DataFrame(rows))
    top = int(cd["table"]["top_group"].sum())
    assert cd["cd"] < cd["max_difference"] and top > cd["k"] / 2
    verdict = next(c for c in critical_difference.claims(cd) if "claim 1" in c["claim"])["verdict"]
    assert verdict.startswith("not contradicted") and f"holds {top} of 18 methods ({100 * top / 18:.0f} %)" in verdict
    # MSG and CT first in 40 blocks of 6 methods: a top group of 2, and "consistent"
    six = ["msg", "ct", "ft", "ga", "ff", "iu"]
    cd = scores.critical_difference(pd.DataFrame([{m: float(i + 1) for i, m in enumerate(six)}] * 40))
    assert int(cd["table"]["top_group"].sum()) == 2
    verdict = next(c for c in critical_difference.claims(cd) if "claim 1" in c["claim"])["verdict"]
    assert verdict.startswith("consistent") and "holds 2 of 6 methods (33 %)" in verdict
