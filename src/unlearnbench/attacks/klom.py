"""KLOM, "KL divergence of margins" (Georgiev et al., "Attribute-to-Delete: Machine
Unlearning via Datamodel Matching", arXiv 2410.23232, App. E.1), as the authors' code
computes it: github.com/RoyRin/data-unlearning-bench, `unlearning_bench/eval.py`
(`get_margins_from_multimodel_logits`, `compute_binned_KL_div`, `kl_from_margins`) and
`unlearning_bench/run.py` (`load_klom`).

Per example, the margin z_y - logsumexp_{j != y} z_j (eval.py
`get_margins_from_multimodel_logits`; the same number as U-LiRA's logit-scaled
confidence, attacks/ulira.py `logit_confidence`) under n unlearned models and under n
oracles (retrained models), as many on each side and all finite (a non-finite margin, a
diverged model's, raises ValueError: sides.paired_samples; eval.py would clip an
infinite one). Both samples are clipped to [-100, 100], binned in 20 equal
bins over their joint range (a range of zero widens to one unit), and
KLOM = D_KL(oracle || unlearned) over the bins, with the unlearned side's empty bins set to
1e-5 where the oracle side has mass (scipy.stats.entropy then renormalises it).
Direction: run.py calls `kl_from_margins(oracle_margins, margins)`, whose first
argument is named `all_unlearned_margins` but lands as `p` of
`compute_binned_KL_div(p_arr, q_arr)` = D_KL(p || q): the oracle is p, as in the paper.
0 = the two binned distributions agree; larger = the unlearned models' margins are
distributed unlike retraining's. Reported per role (forget, retain, validation
examples; attacks/sides.py) as percentiles over examples.

One departure (docs/reference.md F7): eval.py bins with `np.digitize(x, bins)` and
counts indices 1..20, which drops every sample equal to the joint maximum (digitize
puts it past the last edge). The joint maximum is always one of the samples, so eval.py
leaves out at least one sample of every example, and its KLOM differs from this one's
for every example, not in a corner case; here `np.histogram` counts it in the last bin.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .sides import paired_samples
from .ulira import logit_confidence

BIN_COUNT = 20  # eval.py compute_binned_KL_div: bin_count
SMOOTHING = 1e-5  # eval.py compute_binned_KL_div: eps
CLIP = 100.0  # eval.py compute_binned_KL_div: min_val, max_val
PERCENTILES = (50, 95, 99)


def margins(logits, labels) -> np.ndarray:
    """eval.py `get_margins_from_multimodel_logits`, in float64: (..., N, C) -> (..., N)."""
    return logit_confidence(logits, labels)


def binned_probabilities(oracle: np.ndarray, unlearned: np.ndarray,
                         bin_count: int = BIN_COUNT) -> tuple[np.ndarray, np.ndarray]:
    """(bins, E) probabilities of each side over the joint 20 bins of each example, from
    (n, E) and (m, E) samples clipped to [-100, 100]."""
    oracle = np.clip(np.asarray(oracle, dtype=np.float64), -CLIP, CLIP)
    unlearned = np.clip(np.asarray(unlearned, dtype=np.float64), -CLIP, CLIP)
    e_ = oracle.shape[1]
    p, q = np.zeros((bin_count, e_)), np.zeros((bin_count, e_))
    for i in range(e_):
        lo = min(oracle[:, i].min(), unlearned[:, i].min())
        hi = max(oracle[:, i].max(), unlearned[:, i].max())
        if lo >= hi:  # eval.py: all values equal
            hi = lo + 1
        edges = np.linspace(lo, hi, bin_count + 1)
        p[:, i] = np.histogram(oracle[:, i], edges)[0]
        q[:, i] = np.histogram(unlearned[:, i], edges)[0]
    return p / p.sum(0), q / q.sum(0)


def klom(unlearned: np.ndarray, oracle: np.ndarray) -> np.ndarray:
    """Per-example KLOM = D_KL(oracle || unlearned) from (n, E) margins of each side."""
    unlearned, oracle = paired_samples(unlearned, oracle, "margins")
    if unlearned.shape[1] == 0:
        return np.zeros(0)
    p, q = binned_probabilities(oracle, unlearned)
    q_safe = np.where(p > 0, np.maximum(q, SMOOTHING), q)
    return stats.entropy(p, q_safe, axis=0)


def summary(values: np.ndarray, percentiles=PERCENTILES) -> dict:
    """Mean and percentiles over examples (NaN when none was scored)."""
    values = np.asarray(values, dtype=np.float64)
    out = {"n_examples": int(values.size), "mean": float(values.mean()) if values.size else float("nan")}
    for q in percentiles:
        out[f"p{q}"] = float(np.percentile(values, q)) if values.size else float("nan")
    return out
