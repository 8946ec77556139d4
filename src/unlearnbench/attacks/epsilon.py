"""The per-example ε score of the NeurIPS 2023 Machine Unlearning challenge
(Triantafillou et al., arXiv 2406.09073), as the organisers' scoring code computes it:
github.com/google-deepmind/unlearning_evaluation, `metric.py` (and `main.py` for the
final score). Every constant and rule below is theirs; where this module departs, the
row is in docs/reference.md.

Per forget example, two samples of the logit-scaled confidence
(`logit_scaled_confidence`, metric.py `compute_logit_scaled_confidence`): under n
unlearned models and under n retrained models. The "positive" distribution is the one
with the larger median (metric.py `compute_forget_score_from_confs`). Two families of
threshold attacks (metric.py `_get_single_threshold_rates`, `_get_double_threshold_rates`)
give FPR/FNR pairs; each pair gives
    ε = max(log(1 - δ - FPR) - log(FNR), log(1 - δ - FNR) - log(FPR)), clipped at 0,
with δ = 1e-5 (`DELTA`). A threshold with FPR = FNR = 0 (perfect separation) gives ε = ∞;
one with exactly one of FPR, FNR zero is discarded (too few samples to tell); the
example's ε is the largest over thresholds, capped at 50 (`EPSILON_CAP`). An example whose
two samples have ranges in a ratio below 1 % gets the cap at once (a peaky unlearned
distribution; metric.py `_get_epsilons`).

Forget score (metric.py `compute_forget_score_from_confs`): buckets of width 0.5 from 0
up to ceil(log(n - 1)) (a back-of-the-envelope bound on the ε that n samples can show);
the first bucket is worth 1 point, each next one half the previous; an ε beyond the
last bucket is worth 0. The forget score is the mean of the examples' points: 1 = every
example indistinguishable from retraining, 0 = every example told apart.

Final score (main.py `main`): forget score x (RA_u / RA_r) x (TA_u / TA_r), the ratios of
mean retain and test accuracy of the unlearned models to the retrained models'.

Computation. The rates depend only on how many samples of each side a threshold
accepts, so the organisers' threshold grids (100 per unit, a double-threshold band of
400 left thresholds per right threshold) are evaluated by counting with
`np.searchsorted` and then on the distinct (count, count) pairs, instead of comparing
every sample with every threshold on a GPU. The grids are theirs: the double-threshold
grid float64 (np.linspace), the single-threshold grid float32 (torch.linspace's default
dtype, `linspace_float32`); rates and ε are float32 as theirs (a torch float32 mean,
then numpy on float32 arrays).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .sides import paired_samples

DELTA = 1e-5  # metric.py DELTA
EPSILON_CAP = 50.0  # metric.py EPSILON_CAP
NUM_THRESHOLDS_PER_UNIT = 100  # metric.py NUM_THRESHOLDS_PER_UNIT
BUCKET_SIZE = 0.5  # metric.py compute_forget_score_from_confs: bucket_size
DOUBLE_BUFFER = 2.0  # metric.py _get_double_threshold_rates: buffer
PEAKY_RATIO = 0.01  # metric.py _get_epsilons: smallest / largest range below this -> EPSILON_CAP
PROB_FLOOR = 1e-45  # metric.py compute_logit_scaled_confidence: log(p + 1e-45)


def logit_scaled_confidence(logits, labels) -> np.ndarray:
    """metric.py `compute_logit_scaled_confidence`, over any leading axes: float32
    logits minus their max, exp in float32 (so the 1e-45 floor is float32's
    denormal range), softmax in float64, log(p_y + 1e-45) - log(sum_{j != y} p_j + 1e-45).
    `logits` (..., N, C), `labels` (N,)."""
    z = np.asarray(logits, dtype=np.float32)
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z).astype(np.float64)
    p /= p.sum(axis=-1, keepdims=True)
    y = np.broadcast_to(np.asarray(labels, dtype=np.int64), p.shape[:-1])[..., None]
    correct = np.take_along_axis(p, y, axis=-1)[..., 0]
    np.put_along_axis(p, y, 0.0, axis=-1)
    return np.log(correct + PROB_FLOOR) - np.log(p.sum(axis=-1) + PROB_FLOOR)


class _Bands:
    """The rows of np.linspace(start, stop, num, axis=1) for arrays start, stop (R,),
    element by element as numpy computes them (j * step + start; the last is stop),
    without building the (R, num) matrix."""

    def __init__(self, start: np.ndarray, stop: np.ndarray, num: int):
        self.start, self.stop, self.num = start, stop, num
        self.step = (stop - start) / (num - 1)

    def value(self, rows: np.ndarray, j: np.ndarray) -> np.ndarray:
        v = j * self.step[rows] + self.start[rows]
        return np.where(j == self.num - 1, self.stop[rows], v)

    def counts(self, values: np.ndarray) -> np.ndarray:
        """(R, len(values)): per row, #{j : band[j] <= v}, a row-wise
        np.searchsorted(row, v, side="right"): estimated from the step, then corrected
        against the band's own float values, so it is exact."""
        g_ = self.num
        guess = np.floor((values[None, :] - self.start[:, None]) / self.step[:, None]) + 1
        count = np.clip(guess, 0, g_).astype(np.int64)
        rows = np.broadcast_to(np.arange(len(self.start))[:, None], count.shape)
        while True:  # one or two passes in practice
            down = (count > 0) & (self.value(rows, np.maximum(count - 1, 0)) > values[None, :])
            up = (count < g_) & (self.value(rows, np.minimum(count, g_ - 1)) <= values[None, :])
            if not (down.any() or up.any()):
                return count
            count = count - down + up


def _double_counts(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """metric.py `_get_double_threshold_rates`: accept l <= c <= r, with r on a grid and
    l in a band of 400 around r - width; the peakier distribution is "positive" here.
    Returns accepted counts of the (possibly swapped) positive and negative samples, one
    entry per distinct count pair along each right threshold's band, and their sizes.

    Along one band, the count of values below l changes only where l passes a value:
    evaluating the band's thresholds at those positions (and its first) yields every
    count pair the full 400 thresholds do."""
    pos_diff, neg_diff = np.ptp(pos), np.ptp(neg)
    smallest = neg_diff if pos_diff > neg_diff else pos_diff
    if pos_diff >= neg_diff:
        pos, neg = neg, pos
    width = smallest
    low_r = pos.min() + width - DOUBLE_BUFFER
    high_r = pos.max() + DOUBLE_BUFFER
    right = np.linspace(low_r, high_r, num=int(np.ceil((high_r - low_r) * NUM_THRESHOLDS_PER_UNIT)))
    n_left = int(np.ceil(2 * DOUBLE_BUFFER * NUM_THRESHOLDS_PER_UNIT))
    # row i: metric.py's np.linspace(r_i - width - buffer, r_i - width + buffer, 400)
    left = _Bands(right - width - DOUBLE_BUFFER, right - width + DOUBLE_BUFFER, n_left)
    ps, ns = np.sort(pos), np.sort(neg)
    below_p = left.counts(ps)  # (R, n_p): from band position j on, value m is below l
    below_n = left.counts(ns)
    starts = np.concatenate([np.zeros((len(right), 1), dtype=np.int64), below_p, below_n], axis=1)  # (R, S)
    under_p = (below_p[:, None, :] <= starts[:, :, None]).sum(-1)  # values below l at each segment start
    under_n = (below_n[:, None, :] <= starts[:, :, None]).sum(-1)
    upto_p = np.searchsorted(ps, right, side="right")[:, None]  # values <= r
    upto_n = np.searchsorted(ns, right, side="right")[:, None]
    valid = starts < n_left
    tp = np.maximum(upto_p - under_p, 0)[valid]  # an empty band (l > r) accepts none
    fp = np.maximum(upto_n - under_n, 0)[valid]
    return tp, fp, len(ps), len(ns)


def linspace_float32(start: float, end: float, num: int) -> np.ndarray:
    """torch.linspace(start, end, num) in its default dtype, float32, as metric.py's
    single-threshold grid is (its confidences are float64, the grid is not): the ends
    rounded to float32, a float32 step, start + step i for the first half and end -
    step (num - 1 - i) for the rest, each rounded once (torch's fused multiply-add,
    emulated in float64). Compared with torch.linspace in the tests."""
    f32 = np.float32
    if num <= 0:
        return np.empty(0, dtype=f32)
    first, last = f32(start), f32(end)
    if num == 1:
        return np.array([first], dtype=f32)
    step = np.float64((last - first) / f32(num - 1))
    i = np.arange(num, dtype=np.float64)
    return np.where(i < num // 2, np.float64(first) + step * i, np.float64(last) - step * (num - 1 - i)).astype(f32)


def _single_counts(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """metric.py `_get_single_threshold_rates`: accept c >= t, t on a float32 grid
    (`linspace_float32`) over the range of both samples."""
    both = np.concatenate([pos, neg])
    lo, hi = both.min(), both.max()
    thresholds = linspace_float32(lo, hi, int(np.ceil((hi - lo) * NUM_THRESHOLDS_PER_UNIT)))
    ps, ns = np.sort(pos), np.sort(neg)
    accepted_p = len(ps) - np.searchsorted(ps, thresholds, side="left")
    accepted_n = len(ns) - np.searchsorted(ns, thresholds, side="left")
    return accepted_p, accepted_n, len(ps), len(ns)


def _epsilon_of_rates(tp: np.ndarray, n_pos: int, fp: np.ndarray, n_neg: int) -> float:
    """metric.py `_get_epsilons` on the thresholds' accepted counts (distinct pairs)."""
    f32 = np.float32
    tpr, fnr = tp.astype(f32) / f32(n_pos), (n_pos - tp).astype(f32) / f32(n_pos)
    fpr, tnr = fp.astype(f32) / f32(n_neg), (n_neg - fp).astype(f32) / f32(n_neg)
    eps = np.zeros(len(tp), dtype=f32)
    perfect = (fpr + fnr == 0) & (tpr + tnr == 2)
    eps[perfect] = np.inf
    eps[(eps == 0) & (fpr * fnr == 0)] = np.nan  # one rate 0 but not both: too few samples
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: thresholds discarded below
        raw = np.nanmax(np.stack([np.log(1 - DELTA - fpr) - np.log(fnr), np.log(1 - DELTA - fnr) - np.log(fpr)]),
                        axis=0)
    keep = eps == 0
    eps[keep] = np.clip(raw[keep], 0, None)
    eps = eps[~np.isnan(eps)]
    if not len(eps):
        # metric.py asserts here ("all thresholds gave nan epsilon"); it happens when no
        # threshold splits either sample (e.g. two equal constant samples): nothing
        # tells the sides apart, so ε = 0
        return 0.0
    return float(np.nanmax(eps))


def example_epsilon(pos: np.ndarray, neg: np.ndarray) -> float:
    """ε of one example from its positive (larger median) and negative samples, capped."""
    pos, neg = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    pos_diff, neg_diff = np.ptp(pos), np.ptp(neg)
    largest, smallest = (pos_diff, neg_diff) if pos_diff > neg_diff else (neg_diff, pos_diff)
    if largest > 0 and smallest / largest < PEAKY_RATIO:
        return EPSILON_CAP
    # (both ranges 0: metric.py's 0/0 is NaN and goes on to the thresholds, as here)
    tp_d, fp_d, n_p_d, n_n_d = _double_counts(pos, neg)
    tp_s, fp_s, n_p_s, n_n_s = _single_counts(pos, neg)
    best = 0.0
    for tp, fp, n_pos, n_neg in ((tp_d, fp_d, n_p_d, n_n_d), (tp_s, fp_s, n_p_s, n_n_s)):
        if not len(tp):
            continue
        present = np.zeros((n_pos + 1) * (n_neg + 1), dtype=bool)  # the rates depend on the counts only
        present[tp.astype(np.int64) * (n_neg + 1) + fp] = True
        pairs = np.flatnonzero(present)
        best = max(best, _epsilon_of_rates(pairs // (n_neg + 1), n_pos, pairs % (n_neg + 1), n_neg))
    return float(min(max(best, 0.0), EPSILON_CAP))


def epsilons(unlearned: np.ndarray, retrained: np.ndarray) -> np.ndarray:
    """Per-example ε from (n, E) samples of each side (metric.py
    `compute_forget_score_from_confs`: the side with the larger median is positive)."""
    unlearned, retrained = paired_samples(unlearned, retrained, "confidences")
    retrain_positive = np.median(retrained, axis=0) > np.median(unlearned, axis=0)
    out = np.empty(unlearned.shape[1])
    for i in range(unlearned.shape[1]):
        u, r = unlearned[:, i], retrained[:, i]
        out[i] = example_epsilon(r, u) if retrain_positive[i] else example_epsilon(u, r)
    return out


def bucket_points(n_models: int) -> dict[float, float]:
    """metric.py's bucket ladder: {bucket start: points} for buckets of 0.5 up to
    ceil(log(n - 1))."""
    max_epsilon = math.ceil(math.log(n_models - 1)) if n_models > 1 else 0
    start, points, ladder = 0.0, 1.0, {}
    while start + BUCKET_SIZE <= max_epsilon:
        ladder[start] = points
        points /= 2
        start += BUCKET_SIZE
    return ladder


def points(eps: np.ndarray, n_models: int) -> np.ndarray:
    """Each example's points: those of the first bucket whose end exceeds its ε, else 0."""
    eps = np.asarray(eps, dtype=np.float64)
    out = np.zeros(eps.shape)
    done = np.zeros(eps.shape, dtype=bool)
    for start, value in bucket_points(n_models).items():
        hit = ~done & (eps < start + BUCKET_SIZE)
        out[hit] = value
        done |= hit
    return out


def forget_score(unlearned: np.ndarray, retrained: np.ndarray) -> tuple[float, np.ndarray]:
    """(forget score, per-example ε); n = the unlearned side's model count, as metric.py."""
    eps = epsilons(unlearned, retrained)
    return float(points(eps, np.asarray(unlearned).shape[0]).mean()) if eps.size else math.nan, eps


def final_score(forget: float, retain_acc_unlearned: float, retain_acc_retrained: float,
                test_acc_unlearned: float, test_acc_retrained: float) -> float:
    """main.py: forget score x (RA_u / RA_r) x (TA_u / TA_r); not clipped (a ratio may exceed 1)."""
    return forget * (retain_acc_unlearned / retain_acc_retrained) * (test_acc_unlearned / test_acc_retrained)
