"""Tables as CSV (full precision) and Markdown (mean ± std, paper spelling)."""

from __future__ import annotations

import math

import pandas as pd

from .. import io, methods, scores

MAIN_COLUMNS = [("RA", 3), ("FA", 3), ("TA", 3), ("RR", 3), ("FR", 3), ("TR", 3), ("RetDev", 3),
                ("Indisc", 3), ("test_MIA", 3), ("RTE", 1)]
HEADERS = {"test_MIA": "test MIA"}


def order_methods(table: pd.DataFrame, by: str = "RetDev_mean") -> pd.DataFrame:
    """References first (retrained, original), then methods by `by` ascending."""
    rank = table["method"].map({"retrained": 0, "original": 1}).fillna(2)
    return (table.assign(_rank=rank).sort_values(["dataset", "model", "_rank", by], kind="stable")
            .drop(columns="_rank").reset_index(drop=True))


def mean_std(mean: float, std: float, digits: int) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if std is None or math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def to_markdown(table: pd.DataFrame, columns=MAIN_COLUMNS, title: str = "") -> str:
    parts = [f"# {title}\n"] if title else []
    for (dataset, model), block in table.groupby(["dataset", "model"], sort=False):
        n = int(block["n_seeds"].max())
        rows = [{"Method": methods.label(m),
                 **{HEADERS.get(c, c): mean_std(r[f"{c}_mean"], r[f"{c}_std"], d) for c, d in columns}}
                for m, (_, r) in zip(block["method"], block.iterrows())]
        parts.append(f"## {dataset} / {model} ({n} seed{'s' if n != 1 else ''})\n")
        parts.append(pd.DataFrame(rows).to_markdown(index=False) + "\n")
    return "\n".join(parts)


def write_main_table(metrics_csv, out_csv, out_md) -> pd.DataFrame:
    table = order_methods(scores.summary(scores.read_metrics(metrics_csv)))
    with io.atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    io.write_text(out_md, to_markdown(table, title="Main results: mean ± std over seeds "
                                      "(RetDev lower is better, Indisc and RTE higher)"))
    return table
