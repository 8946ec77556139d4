"""Do the reference models of a finished run behave as the protocol needs?

Per (dataset, model) of results/metrics.csv, over its seeds (random scenario):

  retrained RA      mean retain accuracy of the retrained models           >= 0.95
  original FA - TA  mean forget minus test accuracy of the originals       >= 0.03 (it memorises)
  retrained val MIA mean val MIA of the retrained models                   0.5 +- 0.05
and, when the run has U-LiRA scores (results/ulira/*/*/scores/{original,retrained}.json):
  U-LiRA AUC        the originals' AUC above the retrained models'

Prints one row per check and exits 1 when any fails (a quality check of a run, not a
test: the embedded default's numbers are in docs/performance.md).

    python benchmarks/reference_checks.py                  # results/ of the current folder
    python benchmarks/reference_checks.py --results other/results
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

RETAIN_MIN = 0.95
MEMORISATION_MIN = 0.03
MIA_TOLERANCE = 0.05


def checks(metrics: pd.DataFrame, ulira: dict[tuple[str, str], dict[str, float]] | None = None) -> pd.DataFrame:
    """One row per (dataset, model, check): value, the condition, and whether it holds.

    `ulira` maps (dataset, model) to the AUC of each reference kind. Only the random
    scenario's rows (the paper's; the others' references forget a class, poisons... on
    purpose, docs/protocol.md §10)."""
    rows = []
    if "scenario" in metrics:
        metrics = metrics[metrics["scenario"] == "random"]
    for (dataset, model), frame in metrics.groupby(["dataset", "model"], sort=False):
        original, retrained = frame[frame["method"] == "original"], frame[frame["method"] == "retrained"]
        if original.empty or retrained.empty:
            raise ValueError(f"{dataset}/{model}: metrics lack the original or retrained rows")
        seeds = len(retrained)
        ra = float(retrained["retain_acc"].mean())
        gap = float((original["forget_acc"] - original["test_acc"]).mean())
        mia = float(retrained["val_mia"].mean())
        rows += [
            (dataset, model, "retrained RA", ra, f">= {RETAIN_MIN}", ra >= RETAIN_MIN, seeds),
            (dataset, model, "original FA - TA", gap, f">= {MEMORISATION_MIN}", gap >= MEMORISATION_MIN, seeds),
            (dataset, model, "retrained val MIA", mia, f"0.5 +- {MIA_TOLERANCE}",
             abs(mia - 0.5) <= MIA_TOLERANCE, seeds),
        ]
    for (dataset, model), auc in (ulira or {}).items():
        rows.append((dataset, model, "U-LiRA AUC original - retrained", auc["original"] - auc["retrained"], "> 0",
                     auc["original"] > auc["retrained"], None))
    return pd.DataFrame(rows, columns=["dataset", "model", "check", "value", "condition", "holds", "seeds"])


def read_ulira(results: Path) -> dict[tuple[str, str], dict[str, float]]:
    """The AUC of the original and retrained shadow models of each U-LiRA setting found."""
    found = {}
    for scores in sorted(results.glob("ulira/*/*/scores")):
        kinds = {k: scores / f"{k}.json" for k in ("original", "retrained")}
        if all(p.exists() for p in kinds.values()):
            found[(scores.parent.parent.name, scores.parent.name)] = {
                k: float(json.loads(p.read_text())["auc"]) for k, p in kinds.items()}
    return found


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default="results", type=Path)
    args = p.parse_args(argv)
    table = checks(pd.read_csv(args.results / "metrics.csv"), read_ulira(args.results))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    failed = table[~table["holds"]]
    if len(failed):
        print(f"{len(failed)} check(s) fail: " + "; ".join(f"{r.model} {r.check}" for r in failed.itertuples()))
    return 1 if len(failed) else 0


if __name__ == "__main__":
    sys.exit(main())
