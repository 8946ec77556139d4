"""U-LiRA, the per-example unlearning likelihood-ratio attack (docs/protocol.md §6).

Design, the reference's index for index (its pipeline/lira/step_1_lira_generate_splits.py;
docs/reference.md, U-LiRA rows). The official train part is permuted with
default_rng(123); the last 5 % of that order are the fixed validation set, the rest, in
that order, the attack pool. Split k permutes the pool with default_rng(k): the first
ceil(N / 2) are the IN half, the rest the OUT half. Forget set f of split k permutes
split k's IN half (in split k's order) with default_rng(f) and takes its last
ceil(forget_fraction x |IN|) examples: the F forget sets of a split are independent
draws and may overlap. The retain set of (k, f) is the IN half minus forget set f.
Memberships are arrays: `in_mask` (K, N) and `forget_mask` (K, F, N), N = pool size.

Statistic. The logit-scaled confidence phi = log p_y - log(sum_{j != y} p_j), which
equals z_y - logsumexp_{j != y} z_j for logits z: computed in float64 from the logits,
it is finite for every finite logit vector, including softmax probabilities that
round to 0 or 1. The reference implementation's 0/1 "prediction correct" statistic
is `correctness`.

Fits. For one kind of model (an unlearning method, or the original / retrained
references) and one example x: the "forgotten" side holds phi of the models whose
forget set held x, the "never seen" side phi of the models whose split had x OUT.
Each side is a Gaussian with the example's own mean; its variance is the example's
own (unbiased) variance when the side holds at least `min_samples` values, otherwise
the global variance of that side (the pooled within-example variance over all
examples). Sufficient statistics are accumulated per split, so a target split is
left out of the fits by subtraction.

Scoring. A target model (k, f) is scored on the examples of its forget set (label 1,
forgotten) and of its split's OUT half (label 0, never seen), with the fits over the
other splits (`holdout=True`; `holdout=False` fits on the scored models too, as the
reference does; with the `correctness` statistic, `score_reference` replicates the
reference's procedure exactly). The log likelihood ratio is
llr = log L_f - log L_n and the membership probability P = L_f / (L_f + L_n) =
sigmoid(llr). Metrics rank by llr, which orders pairs exactly as P does without
saturating at 0 and 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np
from scipy.special import expit, logsumexp

SPLIT_SEED = 123  # the validation hold-out, as data.make_splits
STATISTICS = ("logit", "correctness")
VAR_FLOOR = 1e-8  # a side whose values are all equal (e.g. 0/1 correctness) keeps a tiny variance
FPR_LEVELS = (0.01, 0.001)


# ----------------------------------------------------------------------------- split design


@dataclass(frozen=True)
class Design:
    """The U-LiRA split design; every array indexes the attack pool (positions 0..N-1)
    except `pool` and `val`, which are indices into the dataset pool."""

    pool: np.ndarray  # int64 (N,) dataset-pool index of each attack-pool example
    val: np.ndarray  # int64 (V,) dataset-pool indices of the fixed validation set
    labels: np.ndarray  # int64 (N,) class of each attack-pool example
    val_labels: np.ndarray  # int64 (V,) class of each validation example
    in_mask: np.ndarray  # bool (K, N): example IN the training half of split k
    forget_mask: np.ndarray  # bool (K, F, N): example in forget set f of split k

    @property
    def n_splits(self) -> int:
        return self.in_mask.shape[0]

    @property
    def n_forget_sets(self) -> int:
        return self.forget_mask.shape[1]

    @property
    def n_pool(self) -> int:
        return len(self.pool)

    def retain_mask(self, split: int, forget_set: int) -> np.ndarray:
        return self.in_mask[split] & ~self.forget_mask[split, forget_set]

    def positions(self, mask: np.ndarray) -> np.ndarray:
        return np.flatnonzero(mask).astype(np.int64)

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def save(self, path, **extra) -> None:
        save_npz_compressed(path, **self.arrays(), **extra)

    @classmethod
    def load(cls, path) -> "Design":
        from ..io import CorruptFileError, load_npz

        arrays = load_npz(path)
        missing = [f.name for f in fields(cls) if f.name not in arrays]
        if missing:
            raise CorruptFileError(f"{path}: U-LiRA split file lacks {', '.join(missing)}")
        design = cls(**{f.name: arrays[f.name] for f in fields(cls)})
        k, n = design.in_mask.shape
        if design.forget_mask.shape[::2] != (k, n) or len(design.labels) != n or \
                len(design.val_labels) != len(design.val):
            raise CorruptFileError(f"{path}: U-LiRA split arrays have inconsistent shapes")
        return design


def save_npz_compressed(path, **arrays) -> None:
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def forget_size(n_in: int, forget_fraction: float) -> int:
    """Forget-set size: the held-out part rounds up, as everywhere in the project (the
    reference rounds down; the same at the paper's sizes)."""
    return math.ceil(forget_fraction * n_in - 1e-9)


def make_design(n_train: int, labels: np.ndarray, n_splits: int, n_forget_sets: int,
                val_fraction: float = 0.05, forget_fraction: float = 0.1, seed: int = SPLIT_SEED) -> Design:
    """docs/protocol.md §6's design over the first `n_train` examples of a dataset pool (its
    official train part), drawn as the reference draws it (module docstring); `labels`
    are the labels of those examples (or of the whole pool)."""
    if n_splits < 1 or n_forget_sets < 1:
        raise ValueError("need at least one split and one forget set")
    order = np.random.default_rng(seed).permutation(n_train).astype(np.int64)
    n_val = math.ceil(val_fraction * n_train - 1e-9)
    pool, val = order[:n_train - n_val], np.sort(order[n_train - n_val:])
    n = len(pool)
    n_in = n - n // 2  # the reference's train_size = len - int(len x 0.5)
    n_forget = forget_size(n_in, forget_fraction)
    if not 1 <= n_forget < n_in:
        raise ValueError(f"a forget set of {forget_fraction} of an IN half of {n_in} examples holds {n_forget}: "
                         "it must hold at least one example and leave a retain set")
    in_mask = np.zeros((n_splits, n), dtype=bool)
    forget_mask = np.zeros((n_splits, n_forget_sets, n), dtype=bool)
    for k in range(n_splits):
        in_half = np.random.default_rng(k).permutation(n)[:n_in]  # seed = split index
        in_mask[k, in_half] = True
        for f in range(n_forget_sets):  # seed = forget-set index, the same in every split
            forget_mask[k, f, in_half[np.random.default_rng(f).permutation(n_in)[n_in - n_forget:]]] = True
    labels = np.asarray(labels, dtype=np.int64)
    return Design(pool, val, labels[pool], labels[val], in_mask, forget_mask)


SHARED_INIT_SEED = 0  # the reference loads model seed 0 for every shadow model
SEARCH_SAMPLER_SEED = 0  # and seeds the sampler of every U-LiRA search study with that model seed


def shadow_seed(split: int, forget_set: int, stream: int = 0) -> int:
    """Deterministic 31-bit seed of (split, forget set): stream 0 = training (and the
    initialisation when it is not shared), 1 = unlearning."""
    return int(np.random.SeedSequence([int(split), int(forget_set), int(stream)]).generate_state(1)[0] >> 1)


def init_seed(split: int, forget_set: int, shared: bool = True) -> int:
    """The model seed a shadow model is initialised from: model seed 0 for all when
    `shared` (the reference's), else the (split, forget set)'s own."""
    return SHARED_INIT_SEED if shared else shadow_seed(split, forget_set)


# ----------------------------------------------------------------------------- statistics


def logit_confidence(logits, labels) -> np.ndarray:
    """phi = log p_y - log(sum_{j != y} p_j) = z_y - logsumexp_{j != y} z_j, float64.

    `logits` (..., N, C), `labels` (N,) broadcast over the leading axes."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.broadcast_to(np.asarray(labels, dtype=np.int64), z.shape[:-1])[..., None]
    z_y = np.take_along_axis(z, y, axis=-1)[..., 0]
    others = z.copy()
    np.put_along_axis(others, y, -np.inf, axis=-1)
    return z_y - logsumexp(others, axis=-1)


def correctness(logits, labels) -> np.ndarray:
    """1.0 where the arg-max class is the label, else 0.0 (the reference's statistic)."""
    z = np.asarray(logits)
    return (z.argmax(-1) == np.asarray(labels)).astype(np.float64)


def statistic(logits, labels, kind: str = "logit") -> np.ndarray:
    if kind == "logit":
        return logit_confidence(logits, labels)
    if kind == "correctness":
        return correctness(logits, labels)
    raise ValueError(f"unknown U-LiRA statistic '{kind}'; valid: {', '.join(STATISTICS)}")


# ----------------------------------------------------------------------------- fits


@dataclass
class SideStats:
    """Per-split sufficient statistics of one side (forgotten or never seen), centred
    per example: count, sum and sum of squares, each (K, N)."""

    count: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray

    @classmethod
    def from_values(cls, values: np.ndarray, mask: np.ndarray) -> "SideStats":
        """values, mask: (K, M, N); the M models of each split are summed."""
        v = np.where(mask, values, 0.0)
        return cls(mask.sum(1).astype(np.int64), v.sum(1), (v * v).sum(1))

    def fit_data(self, leave_out: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, s, q = self.count.sum(0), self.total.sum(0), self.total_sq.sum(0)
        if leave_out is not None:
            n, s, q = n - self.count[leave_out], s - self.total[leave_out], q - self.total_sq[leave_out]
        return n, s, q


@dataclass
class Gaussian:
    """Per-example Gaussian of one side."""

    mean: np.ndarray  # (N,), NaN where the side holds no value
    var: np.ndarray  # (N,)
    count: np.ndarray  # (N,) values the fit used
    per_example: np.ndarray  # bool (N,): own variance (count >= min_samples) rather than global
    global_var: float


def fit_gaussian(count: np.ndarray, total: np.ndarray, total_sq: np.ndarray, min_samples: int = 32) -> Gaussian:
    """Gaussians from sufficient statistics; the global variance is the pooled
    within-example variance sum_x SS_x / sum_x (n_x - 1) over examples with n_x >= 2."""
    count = np.asarray(count, dtype=np.int64)
    n = count.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(n, 1), np.nan)
        ss = np.maximum(total_sq - total * np.where(count > 0, mean, 0.0), 0.0)  # sum of squared deviations
        dof = np.maximum(n - 1, 0)
        if dof.sum() > 0:
            global_var = float(ss[count >= 2].sum() / dof[count >= 2].sum())
        else:  # one value per example at most: the spread of all values of the side
            seen = count > 0
            global_var = float(np.var(total[seen] / n[seen])) if seen.any() else 1.0
        per_example = count >= max(int(min_samples), 2)
        var = np.where(per_example, ss / np.maximum(dof, 1), global_var)
    var = np.maximum(var, VAR_FLOOR)
    return Gaussian(mean, var, count, per_example, max(global_var, VAR_FLOOR))


def fit_side(values: np.ndarray, mask: np.ndarray, min_samples: int = 32) -> Gaussian:
    """Fit from raw values (M, N) where mask (M, N) selects the side's values."""
    v = np.where(mask, np.asarray(values, dtype=np.float64), 0.0)
    return fit_gaussian(mask.sum(0), v.sum(0), (v * v).sum(0), min_samples)


def log_normal_pdf(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    return -0.5 * (np.log(2.0 * np.pi * var) + (x - mean) ** 2 / var)


def likelihood_ratio(x: np.ndarray, forgotten: Gaussian, never_seen: Gaussian) -> tuple[np.ndarray, np.ndarray]:
    """(llr, P): llr = log L_f - log L_n, P = L_f / (L_f + L_n) = sigmoid(llr)."""
    llr = log_normal_pdf(x, forgotten.mean, forgotten.var) - log_normal_pdf(x, never_seen.mean, never_seen.var)
    return llr, expit(llr)


# ----------------------------------------------------------------------------- scoring


@dataclass
class Scores:
    """Dense per-(target model, example) scores, (K, F, N); label -1 = not scored
    (a retain example of the target, a split not targeted, or an example with no value
    on one side of its fit)."""

    label: np.ndarray  # int8: 1 forgotten, 0 never seen, -1 not scored
    llr: np.ndarray  # float32, NaN where not scored
    p: np.ndarray  # float32, NaN where not scored
    n_forgotten_fit: np.ndarray  # int32 values in the forgotten-side fit, (K, N)
    n_never_seen_fit: np.ndarray  # int32 values in the never-seen-side fit, (K, N)
    per_example_var: np.ndarray  # bool (K, 2, N): own variance used (side 0 forgotten, 1 never seen)
    dropped: np.ndarray  # int32 (K, F): target pairs left unscored (no value on a side of the fit)
    targets: np.ndarray  # int64: the target splits

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(label, llr, p) of every scored pair, flattened."""
        sel = self.label >= 0
        return self.label[sel].astype(np.int64), self.llr[sel].astype(np.float64), self.p[sel].astype(np.float64)

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def score(values: np.ndarray, design: Design, min_samples: int = 32, targets: Sequence[int] | None = None,
          holdout: bool = True) -> Scores:
    """Score every target split's models. `values` (K, F, N): the statistic of model
    (k, f) on each pool example. Targets: all splits when None."""
    values = np.asarray(values, dtype=np.float64)
    k_, f_, n_ = values.shape
    if (k_, n_) != design.in_mask.shape or f_ != design.n_forget_sets:
        raise ValueError(f"values of shape {values.shape} do not fit the design "
                         f"({design.n_splits} splits x {design.n_forget_sets} forget sets x {design.n_pool})")
    if not np.isfinite(values).all():
        raise ValueError("the statistic holds non-finite values")
    targets = list(range(k_)) if targets is None else [int(t) for t in targets]
    centre = values.mean(axis=(0, 1))  # per-example centring keeps the sums well conditioned
    values = values - centre
    forgotten_mask = design.forget_mask
    never_mask = np.broadcast_to(~design.in_mask[:, None, :], values.shape)
    stats_f = SideStats.from_values(values, forgotten_mask)
    stats_n = SideStats.from_values(values, never_mask)

    label = np.full(values.shape, -1, dtype=np.int8)
    llr = np.full(values.shape, np.nan, dtype=np.float32)
    p = np.full(values.shape, np.nan, dtype=np.float32)
    n_f = np.zeros((k_, n_), dtype=np.int32)
    n_n = np.zeros((k_, n_), dtype=np.int32)
    own = np.zeros((k_, 2, n_), dtype=bool)
    dropped = np.zeros((k_, f_), dtype=np.int32)
    for k in targets:
        leave_out = k if holdout else None
        g_f = fit_gaussian(*stats_f.fit_data(leave_out), min_samples)
        g_n = fit_gaussian(*stats_n.fit_data(leave_out), min_samples)
        n_f[k], n_n[k] = g_f.count, g_n.count
        own[k, 0], own[k, 1] = g_f.per_example, g_n.per_example
        scorable = (g_f.count > 0) & (g_n.count > 0)
        for f in range(f_):
            lab = np.where(design.forget_mask[k, f], 1, np.where(~design.in_mask[k], 0, -1))
            dropped[k, f] = int(((lab >= 0) & ~scorable).sum())
            lab = np.where(scorable, lab, -1).astype(np.int8)
            r, prob = likelihood_ratio(values[k, f], g_f, g_n)
            sel = lab >= 0
            label[k, f] = lab
            llr[k, f, sel] = r[sel]
            p[k, f, sel] = prob[sel]
    return Scores(label, llr, p, n_f, n_n, own, dropped, np.asarray(targets, dtype=np.int64))


def score_reference(values: np.ndarray, design: Design, targets: Sequence[int] | None = None) -> Scores:
    """The reference's procedure (munl/lira/consolidate_predictions.py), used for
    `statistic: correctness` with `holdout: false`: per example, the mean and the
    population standard deviation (ddof 0, no global fallback, no floor) of its values
    over every model that forgot it and over every model that never saw it, fitted on
    all models including the scored ones; P = pdf_f / (pdf_f + pdf_n) with
    scipy.stats.norm.pdf, for the forgotten cases only (label 1; no never-seen case is
    scored, so the metrics that need both sides are NaN). Where scipy's pdf is undefined
    (a standard deviation of 0, or a side with no value) the reference's P is NaN: that
    pair is left unscored and counted in `dropped`. Targets: the splits whose models'
    forgotten cases are scored (all when None)."""
    from scipy.stats import norm

    values = np.asarray(values, dtype=np.float64)
    k_, f_, n_ = values.shape
    if (k_, n_) != design.in_mask.shape or f_ != design.n_forget_sets:
        raise ValueError(f"values of shape {values.shape} do not fit the design "
                         f"({design.n_splits} splits x {design.n_forget_sets} forget sets x {design.n_pool})")
    targets = list(range(k_)) if targets is None else [int(t) for t in targets]
    forgotten = design.forget_mask
    never = np.broadcast_to(~design.in_mask[:, None, :], values.shape)

    def moments(mask):
        count = mask.sum(axis=(0, 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(mask, values, 0.0).sum(axis=(0, 1)) / count
            var = np.where(mask, (values - mean) ** 2, 0.0).sum(axis=(0, 1)) / count
        return count, mean, np.sqrt(var)

    n_f, mean_f, std_f = moments(forgotten)
    n_n, mean_n, std_n = moments(never)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        pdf_f = norm.pdf(values, mean_f, std_f)
        pdf_n = norm.pdf(values, mean_n, std_n)
        p_all = pdf_f / (pdf_f + pdf_n)
        llr_all = np.log(pdf_f) - np.log(pdf_n)
    defined = np.isfinite(p_all)
    chosen = np.zeros(k_, dtype=bool)
    chosen[targets] = True
    scored = forgotten & defined & chosen[:, None, None]
    label = np.where(scored, 1, -1).astype(np.int8)
    llr = np.where(scored, llr_all, np.nan).astype(np.float32)
    p = np.where(scored, p_all, np.nan).astype(np.float32)
    dropped = (forgotten & ~defined & chosen[:, None, None]).sum(2).astype(np.int32)
    fit_f = np.broadcast_to(n_f, (k_, n_)).astype(np.int32)
    fit_n = np.broadcast_to(n_n, (k_, n_)).astype(np.int32)
    own = np.ones((k_, 2, n_), dtype=bool)
    return Scores(label, llr, p, fit_f, fit_n, own, dropped, np.asarray(targets, dtype=np.int64))


# ----------------------------------------------------------------------------- metrics


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, level: float) -> float:
    """The largest TPR whose FPR is at most `level` (roc_curve starts at FPR 0)."""
    ok = fpr <= level + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def attack_metrics(label: np.ndarray, llr: np.ndarray) -> dict:
    """Accuracy at P > 0.5 (balanced: forgotten and never-seen examples weigh equally,
    so 0.5 = no better than chance whatever the class sizes), the best balanced
    accuracy over thresholds, ROC AUC, TPR at 1 % and 0.1 % FPR."""
    from sklearn.metrics import roc_auc_score, roc_curve

    label = np.asarray(label).astype(np.int64)
    llr = np.asarray(llr, dtype=np.float64)
    pos, neg = label == 1, label == 0
    out = {"n_forgotten": int(pos.sum()), "n_never_seen": int(neg.sum())}
    if not pos.any() or not neg.any():
        return {**out, "accuracy": math.nan, "best_balanced_accuracy": math.nan, "auc": math.nan,
                **{f"tpr_at_{_pct(x)}_fpr": math.nan for x in FPR_LEVELS}}
    fpr, tpr, _ = roc_curve(label, llr)
    out["accuracy"] = 0.5 * (float((llr[pos] > 0).mean()) + float((llr[neg] <= 0).mean()))
    out["best_balanced_accuracy"] = float(np.max(0.5 * (tpr + 1.0 - fpr)))
    out["auc"] = float(roc_auc_score(label, llr))
    for x in FPR_LEVELS:
        out[f"tpr_at_{_pct(x)}_fpr"] = tpr_at_fpr(fpr, tpr, x)
    return out


def _pct(level: float) -> str:
    return f"{level * 100:g}pct".replace(".", "_")


def roc(label: np.ndarray, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(label).astype(np.int64), np.asarray(llr, dtype=np.float64))
    return fpr, tpr


def summarise(scores: Scores) -> dict:
    """Pooled metrics over all scored pairs, the spread of the AUC over target models,
    and the mean membership probability of each side."""
    label, llr, p = scores.pairs()
    out = attack_metrics(label, llr)
    aucs = []
    k_, f_, _ = scores.label.shape
    for k in range(k_):
        for f in range(f_):
            lab = scores.label[k, f]
            if (lab == 1).any() and (lab == 0).any():
                aucs.append(attack_metrics(lab[lab >= 0], scores.llr[k, f][lab >= 0])["auc"])
    out["n_targets"] = len(aucs)
    out["auc_std"] = float(np.std(aucs, ddof=1)) if len(aucs) > 1 else math.nan
    out["mean_p_forgotten"] = float(p[label == 1].mean()) if (label == 1).any() else math.nan
    out["mean_p_never_seen"] = float(p[label == 0].mean()) if (label == 0).any() else math.nan
    targets = scores.targets
    out["n_unscored"] = int(scores.dropped[targets].sum())
    out["per_example_variance_share"] = float(scores.per_example_var[targets].mean()) if len(targets) else math.nan
    return out
