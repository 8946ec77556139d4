"""results/tables/hyperparameters.{csv,md}: the setting the search chose per dataset,
model and method (docs/protocol.md §5), and the methods not searched because they do not
apply (printed "n/a" with the reason)."""

from __future__ import annotations

import json
from typing import Sequence

import pandas as pd

from .. import io, methods, search


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def write_hyperparameters_table(best_jsons: Sequence, out_csv, out_md, not_applicable: Sequence = ()) -> pd.DataFrame:
    """results/tables/hyperparameters.{csv,md}: the chosen setting per dataset, model and
    method (searched parameters; the rest are the method defaults). `not_applicable` holds
    (dataset, model, method, reason) of the configured methods that were not searched
    because they do not apply to the scenario: printed "n/a" with the reason."""
    rows = []
    for path in best_jsons:
        best = io.read_json(path)
        objectives = best["objectives"] or dict.fromkeys(search.OBJECTIVES)  # None: no study completed a trial
        rows.append({"dataset": best.get("dataset"), "model": best.get("model"), "method": best["method"],
                     "search_seed": best["seed"], "trial": best["trial"], "norm": best["norm"],
                     **objectives, "params": json.dumps(best["params"], sort_keys=True), "na_reason": None})
    for dataset, model, method, reason in dict.fromkeys(tuple(r) for r in not_applicable):
        rows.append({"dataset": dataset, "model": model, "method": method, "params": None, "na_reason": reason})
    columns = ["dataset", "model", "method", "search_seed", "trial", "norm", *search.OBJECTIVES, "params", "na_reason"]
    table = pd.DataFrame(rows, columns=columns)
    rank = {m: i for i, m in enumerate(methods.names())}
    table = (table.assign(_rank=table["method"].map(rank)).sort_values(["dataset", "model", "_rank"], kind="stable")
             .drop(columns="_rank").reset_index(drop=True))
    with io.atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    parts = ["# Chosen hyperparameters (smallest norm of the 4 search objectives over the search seeds; "
             "parameters not listed keep the method defaults; trial \"defaults\": the method defaults won; with "
             "search.start_from_defaults, trial 0 is the method defaults moved into the search space, and a "
             "study of one trial chooses them)\n"]
    for (dataset, model), block in table.groupby(["dataset", "model"], sort=False):
        shown = pd.DataFrame({
            "Method": [methods.label(m) for m in block["method"]],
            "Setting": ["n/a" if isinstance(r, str) else
                        ", ".join(f"{k}={_format_value(v)}" for k, v in json.loads(p).items()) or "(defaults)"
                        for p, r in zip(block["params"], block["na_reason"])],
            "Seed": ["-" if pd.isna(v) else str(int(v)) for v in block["search_seed"]],
            "Trial": ["n/a" if isinstance(r, str) else "none complete: defaults" if pd.isna(t)
                      else "defaults" if t == search.DEFAULTS_NUMBER else str(int(t))
                      for t, r in zip(block["trial"], block["na_reason"])],
            "Norm": ["-" if pd.isna(v) else f"{v:.4f}" for v in block["norm"]]})
        parts.append(f"## {dataset} / {model}\n")
        parts.append(shown.to_markdown(index=False) + "\n")
    notes = table.dropna(subset=["na_reason"]).drop_duplicates(["method", "na_reason"])
    parts += [f"n/a: {r}" for r in notes["na_reason"]] + ([""] if len(notes) else [])
    io.write_text(out_md, "\n".join(parts + methods.legend(table["method"])))
    return table
