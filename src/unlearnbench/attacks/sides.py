"""Which models of the U-LiRA shadow bank stand on each side of a per-example
comparison (the NeurIPS 2023 challenge's ε score, attacks/epsilon.py, and KLOM,
attacks/klom.py; docs/protocol.md §6 for the bank).

The bank holds, per (split k, forget set f), an original, a retrained model and each
method's unlearned copy of that original. Both scores compare, per example x, the
statistic of x under models of the scored kind ("unlearned side") with its statistic
under retrained models ("reference side"), and need the same number `n` of models on
each side (the organisers' code and KLOM's both take two [models, examples] arrays of
one shape). The pairs (k, f) are taken in (split, forget set) order:

- role "forget": scored side = the pairs whose forget set held x; reference side = the
  retrained models of the pairs whose split had x OUT. Both reference candidates (a
  retrained model whose forget set held x, or one whose split had x OUT) are trained on
  a uniformly random subset of the pool without x of the same size, so they share one
  distribution; taking the OUT ones keeps the reference side apart from the models the
  scored side is paired with, and the retrained kind, scored like a method, then
  measures the estimator's noise floor (two independent samples of one distribution)
  instead of comparing a sample with itself.
- role "retain": candidates = the pairs whose retain set held x; the scored side takes
  the even-ranked ones, the reference side the odd-ranked ones (disjoint, as above).
- role "val": the held-out validation set, which no shadow model trains on; every pair
  is a candidate, split even / odd as for retain.

An example with fewer than `n` candidates on a side is not scored. Membership comes
from the Design's arrays only (no assumption that forget sets are disjoint).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROLES = ("forget", "retain", "val")
MIN_MODELS = 3
"""Fewest models per side the challenge's score can use: its bucket ladder ends at
ceil(log(n - 1)), which is 0 (no bucket, every example scores 0) for n = 2."""


@dataclass(frozen=True)
class Sides:
    """Row indices into the bank flattened over (split, forget set), per side."""

    scored: np.ndarray  # int64 (n, E): pair index of the i-th scored-side model of example e
    reference: np.ndarray  # int64 (n, E): pair index of the i-th reference-side model
    ok: np.ndarray  # bool (E,): the example has n models on both sides
    n: int

    def take(self, scored_values: np.ndarray, reference_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, E') arrays of the scored examples' statistic on each side, from (P, E)
        arrays of the scored kind and of the retrained models (P = splits x forget sets)."""
        cols = np.flatnonzero(self.ok)
        return (np.take_along_axis(scored_values[:, cols], self.scored[:, cols], axis=0),
                np.take_along_axis(reference_values[:, cols], self.reference[:, cols], axis=0))


def _first(mask: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column of the (P, E) mask, the row indices of its first n True entries (in
    row order) and whether it has n of them."""
    order = np.argsort(~mask, axis=0, kind="stable")[:n]
    return order.astype(np.int64), mask.sum(0) >= n


def _alternate(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split each column's True entries by rank: even ranks, odd ranks."""
    rank = np.cumsum(mask, axis=0) - 1
    return mask & (rank % 2 == 0), mask & (rank % 2 == 1)


def candidates(design, role: str) -> tuple[np.ndarray, np.ndarray]:
    """(scored-side, reference-side) candidate masks, each (P, E), P = K x F pairs in
    (split, forget set) order, E = pool examples (val: validation examples)."""
    k_, f_, n_ = design.forget_mask.shape
    if role == "forget":
        scored = design.forget_mask.reshape(k_ * f_, n_)
        reference = np.broadcast_to(~design.in_mask[:, None, :], (k_, f_, n_)).reshape(k_ * f_, n_)
        return scored, reference
    if role == "retain":
        return _alternate((design.in_mask[:, None, :] & ~design.forget_mask).reshape(k_ * f_, n_))
    if role == "val":
        return _alternate(np.ones((k_ * f_, len(design.val)), dtype=bool))
    raise ValueError(f"unknown role '{role}'; valid: {', '.join(ROLES)}")


def sides(design, role: str, n: int) -> Sides:
    if n < 1:
        raise ValueError(f"need at least one model per side, got {n}")
    scored_mask, reference_mask = candidates(design, role)
    scored, ok_s = _first(scored_mask, n)
    reference, ok_r = _first(reference_mask, n)
    return Sides(scored, reference, ok_s & ok_r, int(n))


def counts(design, role: str = "forget") -> np.ndarray:
    """Per example, the models available on its scarcer side."""
    scored, reference = candidates(design, role)
    return np.minimum(scored.sum(0), reference.sum(0))


def default_models(design) -> int:
    """Models per side when the config leaves it open: the median, over the pool, of the
    forget role's available models on the scarcer side (the models that forgot the
    example, or the retrained models that never saw it if fewer), so about half the pool
    is scored; at least MIN_MODELS where the bank allows; the same n serves every role so that forget, retain and val
    values are comparable (both scores depend on n)."""
    available = counts(design, "forget")
    n = int(np.median(available))
    return max(n, min(MIN_MODELS, int(available.max(initial=0))))


def paired_samples(first, second, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Two (models, examples) float64 arrays of one shape (the same number of models on
    each side, the same examples), finite, or a ValueError naming `what` they hold (the
    input check of every per-example score)."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if first.ndim != 2 or second.ndim != 2 or first.shape != second.shape:
        raise ValueError(f"need (models, examples) arrays with as many models on each side and the same "
                         f"examples, got {first.shape} and {second.shape}")
    if not (np.isfinite(first).all() and np.isfinite(second).all()):
        raise ValueError(f"the {what} hold non-finite values")
    return first, second
