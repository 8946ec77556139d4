"""Test oracles: slow or literal versions of what the package computes, kept to check it
against (never imported by the package, the workflow or the benchmarks)."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import torch

from unlearnbench.methods.iu import DAMPING
from unlearnbench.scores import CI_LEVEL, ci_halfwidth


def split_sizes(n_train: int, n_test: int, val_fraction: float = 0.15, forget_fraction: float = 0.1) -> dict[str, int]:
    """Split sizes without drawing them: held-out parts round up (scikit-learn's rule)."""
    n_val = math.ceil(val_fraction * n_train)
    n_forget = math.ceil(forget_fraction * (n_train - n_val))
    return {"retain": n_train - n_val - n_forget, "forget": n_forget, "val": n_val, "test": n_test}


def confidence_interval(values, level: float = CI_LEVEL) -> tuple[float, float]:
    """(low, high) t-interval of the mean of `values`."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    mean = float(x.mean()) if len(x) else float("nan")
    half = ci_halfwidth(x, level)
    return mean - half, mean + half


def woodfisher(v: torch.Tensor, sample_grads: Iterable[torch.Tensor], damping: float = DAMPING) -> torch.Tensor:
    """The reference's WoodFisher recursion: the first gradient initialises o; for each
    later g, k <- k - (k.g / (N + o.g)) o, then o <- o - (o.g / (N + o.g)) o; k starts at v.
    (Not under no_grad: `sample_grads` may be a generator that needs autograd.)"""
    k = v.clone()
    o = None
    for g in sample_grads:
        if o is None:
            o = g.clone()
            continue
        og = torch.dot(o, g)
        denom = damping + og
        k -= (torch.dot(k, g) / denom) * o
        o -= (og / denom) * o
    return k
