"""The ε score and KLOM of each kind (a method, original or retrained) from its U-LiRA
bank, as table rows and per-example values; report/forgetting.py writes and explains
them. Which bank models stand on each side of an example: attacks/sides.py."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..attacks import epsilon as eps_score
from ..attacks import klom as klom_score
from ..attacks import sides as ub_sides
from ..attacks import ulira
from ..attacks.ulira_files import read_bank

def load_kind(design: ulira.Design, bank_paths: Sequence) -> dict[str, np.ndarray]:
    """Logits of one kind over all splits: pool (K, F, N, C), val (K, F, V, C), float32."""
    if len(bank_paths) != design.n_splits:
        raise ValueError(f"{len(bank_paths)} banks for {design.n_splits} splits")
    pool, val = [], []
    for k, path in enumerate(bank_paths):
        bank = read_bank(path, design, k)
        pool.append(bank["logits"].astype(np.float32))
        val.append(bank["val_logits"].astype(np.float32))
    return {"pool": np.stack(pool), "val": np.stack(val)}


def accuracies(design: ulira.Design, logits: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Mean over the kind's K x F models of retain accuracy (each on its own retain set)
    and of accuracy on the held-out validation set, the test set of the challenge's
    utility terms (no shadow model trains on it)."""
    correct = logits["pool"].argmax(-1) == design.labels  # (K, F, N)
    retain = design.in_mask[:, None, :] & ~design.forget_mask
    ra = (correct & retain).sum(-1) / retain.sum(-1)
    ta = (logits["val"].argmax(-1) == design.val_labels).mean(-1)
    return {"retain_acc": float(ra.mean()), "test_acc": float(ta.mean())}


def _flat(values: np.ndarray) -> np.ndarray:
    k_, f_ = values.shape[:2]
    return values.reshape(k_ * f_, *values.shape[2:])


def models_per_side(design: ulira.Design, models: int | None) -> int:
    n = ub_sides.default_models(design) if models is None else int(models)
    if n < 1:
        raise ValueError(f"models per side must be >= 1, got {n}")
    return n


KLOM_MIN_MODELS = 16
"""Below this many models per side, KLOM of two samples of one distribution is near its
value for disjoint ones (benchmarks/forgetting_bank_size.py: 6.5 vs 10 at n = 8)."""



def epsilon_scores(design: ulira.Design, banks: Mapping[str, Sequence], order: Sequence[str], n: int,
                   dataset: str = "", model: str = "") -> tuple[pd.DataFrame, dict, ub_sides.Sides]:
    """Rows (one per kind of `order`), per-example ε values and the chosen sides of the
    challenge's score, `n` models per side (report/forgetting.py epsilon_job)."""
    chosen = ub_sides.sides(design, "forget", n)
    logits = {kind: load_kind(design, paths) for kind, paths in banks.items()}
    conf = {kind: _flat(eps_score.logit_scaled_confidence(lg["pool"], design.labels)) for kind, lg in logits.items()}
    acc = {kind: accuracies(design, lg) for kind, lg in logits.items()}
    rows, values = [], {}
    for kind in order:
        unlearned, reference = chosen.take(conf[kind], conf["retrained"])
        score, eps = eps_score.forget_score(unlearned, reference)
        pts = eps_score.points(eps, n)
        a, r = acc[kind], acc["retrained"]
        values[kind] = eps
        rows.append({
            "dataset": dataset, "model": model, "method": kind, "models_per_side": n,
            "n_examples": int(eps.size), "n_unscored": int((~chosen.ok).sum()),
            "forget_score": score,
            "forget_score_se": float(pts.std(ddof=1) / math.sqrt(pts.size)) if pts.size > 1 else math.nan,
            "final_score": eps_score.final_score(score, a["retain_acc"], r["retain_acc"], a["test_acc"],
                                                 r["test_acc"]),
            "epsilon_median": float(np.median(eps)) if eps.size else math.nan,
            "share_best_bucket": float((pts == 1).mean()) if pts.size else math.nan,
            "share_zero_points": float((pts == 0).mean()) if pts.size else math.nan,
            "share_at_cap": float((eps >= eps_score.EPSILON_CAP).mean()) if eps.size else math.nan,
            "retain_acc": a["retain_acc"], "test_acc": a["test_acc"],
            "retain_ratio": a["retain_acc"] / r["retain_acc"], "test_ratio": a["test_acc"] / r["test_acc"],
        })
    return pd.DataFrame(rows), values, chosen


def klom_scores(design: ulira.Design, banks: Mapping[str, Sequence], order: Sequence[str], n: int,
                dataset: str = "", model: str = "") -> tuple[pd.DataFrame, dict]:
    """Rows (kind x role, percentiles over examples) and per-example values of KLOM,
    `n` models per side for every role (report/forgetting.py klom_job)."""
    chosen = {role: ub_sides.sides(design, role, n) for role in ub_sides.ROLES}
    margins = {}
    for kind, paths in banks.items():
        lg = load_kind(design, paths)
        margins[kind] = {"pool": _flat(klom_score.margins(lg["pool"], design.labels)),
                         "val": _flat(klom_score.margins(lg["val"], design.val_labels))}
    rows, values = [], {}
    for kind in order:
        for role in ub_sides.ROLES:
            where = "val" if role == "val" else "pool"
            unlearned, oracle = chosen[role].take(margins[kind][where], margins["retrained"][where])
            kl = klom_score.klom(unlearned, oracle)
            values[f"{kind}__{role}"] = kl
            rows.append({"dataset": dataset, "model": model, "method": kind, "role": role, "models_per_side": n,
                         "n_unscored": int((~chosen[role].ok).sum()), **klom_score.summary(kl)})
    return pd.DataFrame(rows), values
