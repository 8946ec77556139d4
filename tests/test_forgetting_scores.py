"""The NeurIPS 2023 challenge's ε score, KLOM and the bank's side selection: known
answers on synthetic samples, agreement with a direct transcription of the organisers'
metric.py, and both jobs on a synthetic shadow bank."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from unlearnbench.attacks import epsilon, klom, sides, ulira
from unlearnbench.attacks.ulira_files import write_bank

import challenge_metric


def _organisers(unlearned, retrained):
    """(forget score, per-example ε) of the transcription of metric.py."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = challenge_metric.compute_forget_score_from_confs(unlearned.copy(), retrained.copy())
        positive = np.median(retrained, 0) > np.median(unlearned, 0)
        eps = challenge_metric._get_epsilons(np.where(positive, retrained, unlearned),
                                             np.where(positive, unlearned, retrained), challenge_metric.DELTA)
    return score, np.asarray(eps, dtype=np.float64)


# ----------------------------------------------------------------------------- ε score


def test_identical_samples_give_epsilon_0_and_score_1():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 30))
    score, eps = epsilon.forget_score(x, x.copy())
    assert np.all(eps == 0) and score == 1.0
    assert _organisers(x[:, :2], x[:, :2])[0] == 1.0


def test_separable_samples_give_the_cap_and_score_0():
    rng = np.random.default_rng(1)
    retrained = rng.normal(size=(8, 20))
    score, eps = epsilon.forget_score(retrained + 50.0, retrained)
    assert np.all(eps == epsilon.EPSILON_CAP) and score == 0.0


def test_peaky_unlearned_distribution_gets_the_cap():
    retrained = np.array([[0.0], [1.0], [2.0], [3.0]])
    unlearned = np.array([[1.5], [1.5], [1.5], [1.5001]])  # range ratio 1e-4 / 3 < 1 %
    assert epsilon.epsilons(unlearned, retrained)[0] == epsilon.EPSILON_CAP


def test_hand_computed_small_case():
    # retrained [0, 1, 2], unlearned [1.5, 2.5, 3.5]: the best threshold (single, at 1.5 < t <= 2, or the band
    # [0, 1.5]) has FPR = FNR = 1/3; thresholds with one rate 0 are discarded, so
    # ε = log(1 - δ - 1/3) - log(1/3) = log(2 - 3δ), in the bucket [0.5, 1) of n = 3's ladder {0: 1, 0.5: 0.5}
    retrained = np.array([[0.0], [1.0], [2.0]])
    unlearned = np.array([[1.5], [2.5], [3.5]])
    score, eps = epsilon.forget_score(unlearned, retrained)
    assert eps[0] == pytest.approx(math.log(2 - 3 * epsilon.DELTA), abs=1e-6)
    assert epsilon.bucket_points(3) == {0.0: 1.0, 0.5: 0.5}
    assert score == 0.5
    ref_score, ref_eps = _organisers(unlearned, retrained)
    assert ref_score == 0.5 and ref_eps[0] == eps[0]


def test_bucket_ladder_as_metric_py():
    assert epsilon.bucket_points(2) == {}  # ceil(log 1) = 0: no bucket, every example scores 0
    assert list(epsilon.bucket_points(4).values()) == [1, 0.5, 0.25, 0.125]  # ceil(log 3) = 2
    assert len(epsilon.bucket_points(32)) == 8 and len(epsilon.bucket_points(512)) == 14
    assert list(epsilon.points(np.array([0.0, 0.49, 0.5, 1.2, 1.99, 2.0, 50.0]), 4)) == \
        [1, 1, 0.5, 0.25, 0.125, 0, 0]


def test_matches_the_organisers_code_on_random_cases():
    rng = np.random.default_rng(2)
    for case in range(8):
        n = int(rng.integers(3, 10))
        retrained = rng.normal(0, rng.uniform(0.2, 3), (n, 3))
        unlearned = rng.normal(rng.choice([0, 0.3, 1, 3]), rng.uniform(0.2, 3), (n, 3))
        if case % 4 == 0:  # ties, as float16 logits give
            retrained, unlearned = np.round(retrained, 1), np.round(unlearned, 1)
        score, eps = epsilon.forget_score(unlearned, retrained)
        ref_score, ref_eps = _organisers(unlearned, retrained)
        np.testing.assert_allclose(eps, ref_eps, rtol=0, atol=1e-6, err_msg=f"case {case}")
        assert score == ref_score


def test_constant_equal_samples_score_0_where_metric_py_asserts():
    x = np.full((4, 1), 2.0)
    assert epsilon.epsilons(x, x.copy())[0] == 0.0
    assert epsilon.epsilons(x, x + 1)[0] == epsilon.EPSILON_CAP  # two different constants: separable


def test_logit_scaled_confidence_as_metric_py():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 5, (6, 10)).astype(np.float32)
    logits[0, 3] = 200  # softmax saturates: metric.py's 1e-45 floor
    labels = rng.integers(0, 10, 6)
    _, ref = challenge_metric.compute_logit_scaled_confidence(logits.copy(), labels)
    np.testing.assert_allclose(epsilon.logit_scaled_confidence(logits, labels), ref, rtol=1e-12)
    batched = epsilon.logit_scaled_confidence(np.stack([logits, logits]), labels)
    assert batched.shape == (2, 6)


def test_final_score_multiplies_the_utility_ratios():
    assert epsilon.final_score(0.5, 0.9, 1.0, 0.8, 0.8) == pytest.approx(0.45)


def test_bad_shapes_and_non_finite_values_are_errors():
    with pytest.raises(ValueError, match="same examples"):
        epsilon.epsilons(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="non-finite"):
        epsilon.epsilons(np.full((3, 1), np.nan), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="as many models on each side"):  # sides.py: n on each side
        epsilon.epsilons(np.zeros((4, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="as many models on each side"):
        klom.klom(np.zeros((4, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="non-finite"):  # an infinite margin is not clipped
        klom.klom(np.full((3, 1), np.inf), np.zeros((3, 1)))


def test_single_threshold_grid_is_torch_linspace_in_float32():
    """docs/reference.md F2: metric.py's torch.linspace grid is float32 (torch's default
    dtype) though its confidences are float64; linspace_float32 gives the same values."""
    import torch

    rng = np.random.default_rng(0)
    for _ in range(300):
        lo = rng.normal() * 10.0 ** rng.integers(-3, 3)
        hi = lo + abs(rng.normal()) * 10.0 ** rng.integers(-2, 3)
        n = int(np.ceil((hi - lo) * epsilon.NUM_THRESHOLDS_PER_UNIT))
        want = torch.linspace(torch.tensor(lo, dtype=torch.float64), torch.tensor(hi, dtype=torch.float64), n)
        np.testing.assert_array_equal(epsilon.linspace_float32(lo, hi, n), want.numpy())
    assert epsilon.linspace_float32(1.0, 2.0, 1).tolist() == [1.0] and epsilon.linspace_float32(1, 2, 0).size == 0


# ----------------------------------------------------------------------------- KLOM


def _klom_as_released(p_arr, q_arr, bin_count=20, eps=1e-5, min_val=-100, max_val=100):
    """eval.py compute_binned_KL_div, transcribed (np.digitize drops the joint maximum)."""
    from scipy import stats

    p_arr, q_arr = np.clip(p_arr, min_val, max_val), np.clip(q_arr, min_val, max_val)
    start, end = min(p_arr.min(), q_arr.min()), max(p_arr.max(), q_arr.max())
    if start >= end:
        end = start + 1
    bins = np.linspace(start, end, bin_count + 1)
    p_c = np.array([np.sum(np.digitize(p_arr, bins) == i) for i in range(1, bin_count + 1)])
    q_c = np.array([np.sum(np.digitize(q_arr, bins) == i) for i in range(1, bin_count + 1)])
    p, q = p_c / p_c.sum(), q_c / q_c.sum()
    return stats.entropy(pk=p, qk=np.where(p > 0, np.maximum(q, eps), q))


def test_klom_identical_samples_give_0():
    x = np.random.default_rng(4).normal(size=(16, 12))
    assert np.allclose(klom.klom(x, x.copy()), 0.0)


def test_klom_separable_samples_give_the_smoothing_bound():
    # all oracle mass in bins the unlearned side leaves empty: q = 1e-5 there, renormalised by scipy
    oracle = np.array([[0.0], [0.0], [0.0], [0.0]])
    unlearned = np.array([[10.0], [10.0], [10.0], [10.0]])
    expected = math.log(1 / (1e-5 / (1 + 1e-5)))
    assert klom.klom(unlearned, oracle)[0] == pytest.approx(expected, rel=1e-9)


def test_klom_is_oracle_first_and_counts_the_joint_maximum():
    # oracle [0, 0, 1], unlearned [0, 0, 0]: bins over [0, 1]; oracle (2/3 in the first bin, 1/3 in the last),
    # unlearned all in the first, its empty last bin set to 1e-5 and renormalised by scipy
    oracle, unlearned = np.array([[0.0], [0.0], [1.0]]), np.zeros((3, 1))
    z = 1 + 1e-5
    expected = 2 / 3 * math.log(2 / 3 * z) + 1 / 3 * math.log(1 / 3 * z / 1e-5)
    assert klom.klom(unlearned, oracle)[0] == pytest.approx(expected, rel=1e-9)
    assert klom.klom(oracle, unlearned)[0] == pytest.approx(math.log(1.5), rel=1e-9)  # the other direction
    # eval.py's np.digitize drops the sample at the joint maximum: it sees no difference at all
    assert _klom_as_released(oracle[:, 0], unlearned[:, 0]) == 0.0


def test_klom_matches_eval_py_where_no_sample_sits_at_the_maximum_of_one_side_only():
    rng = np.random.default_rng(5)
    for _ in range(10):
        oracle, unlearned = rng.normal(0, 1, 40), rng.normal(0.5, 2, 40)
        top = max(oracle.max(), unlearned.max())
        oracle, unlearned = np.append(oracle, top), np.append(unlearned, top)  # one sample at the top on each side
        # eval.py drops both top samples; with one top sample per side of 41, ours differs by that one sample:
        # compare with eval.py on the samples minus the dropped ones, binned over the same range
        mine = klom.klom(unlearned[:, None], oracle[:, None])[0]
        assert np.isfinite(mine) and mine >= 0
        assert mine == pytest.approx(_klom_as_released(oracle, unlearned), abs=0.05)


def test_klom_summary_percentiles():
    s = klom.summary(np.arange(101, dtype=float))
    assert s["n_examples"] == 101 and s["p50"] == 50 and s["p95"] == 95 and s["mean"] == 50
    assert math.isnan(klom.summary(np.zeros(0))["p95"])


# ----------------------------------------------------------------------------- sides


def _design(n_splits=8, n_forget_sets=10, forget_fraction=0.1, n_train=422, classes=3):
    # a pool of 400: IN halves of 200, forget sets of 20
    labels = np.arange(n_train) % classes
    return ulira.make_design(n_train, labels, n_splits, n_forget_sets, forget_fraction=forget_fraction)


def test_forget_role_scores_forgetting_pairs_against_out_pairs():
    d = _design()
    n = sides.default_models(d)
    s = sides.sides(d, "forget", n)
    k_, f_, n_ = d.forget_mask.shape
    forgot = d.forget_mask.reshape(k_ * f_, n_)
    out = np.broadcast_to(~d.in_mask[:, None, :], (k_, f_, n_)).reshape(k_ * f_, n_)
    cols = np.flatnonzero(s.ok)
    assert len(cols) >= n_ // 2  # the median: about half the pool
    assert forgot[s.scored[:, cols], cols].all() and out[s.reference[:, cols], cols].all()
    assert (sides.counts(d)[~s.ok] < n).all()


@pytest.mark.parametrize("role", ["retain", "val"])
def test_retain_and_val_sides_are_disjoint_pairs(role):
    d = _design()
    s = sides.sides(d, role, 4)
    cols = np.flatnonzero(s.ok)
    assert len(cols) and not (s.scored[:, None, cols] == s.reference[None, :, cols]).any()
    if role == "retain":
        k_, f_, n_ = d.forget_mask.shape
        kept = (d.in_mask[:, None, :] & ~d.forget_mask).reshape(k_ * f_, n_)
        assert kept[s.scored[:, cols], cols].all() and kept[s.reference[:, cols], cols].all()


def test_default_bank_counts():
    # an example is forgotten in about K x F x forget_fraction / 2 models
    assert sides.default_models(_design(8, 10)) == 4
    assert sides.default_models(_design(64, 10)) == 32
    # config.yaml's 8 x 2 forgets an example in 0.8 models on average: the floor of 3 leaves few scored
    small = _design(8, 2)
    assert np.median(sides.counts(small)) <= 1 and sides.default_models(small) == sides.MIN_MODELS


# ----------------------------------------------------------------------------- jobs on a synthetic bank


def _write_bank_files(tmp_path, d, rng, shifts):
    """Logits of 3 classes whose margin for example x under model (k, f) is mu_x + noise
    + a shift by x's role there (shifts: kind -> (forget, retain, out) shifts)."""
    path = tmp_path / "splits.npz"
    d.save(path, dataset=np.array("synthetic"))
    mu, mu_val = rng.normal(0, 1, d.n_pool), rng.normal(0, 1, len(d.val))
    k_, f_, n_ = d.forget_mask.shape
    banks = {}
    for kind, (s_forget, s_retain, s_out) in shifts.items():
        banks[kind] = []
        for k in range(k_):
            role_shift = np.where(d.forget_mask[k], s_forget,
                                  np.where(d.in_mask[k][None, :], s_retain, s_out))  # (F, N)
            margin = mu + role_shift + rng.normal(0, 1, (f_, n_))
            val_margin = mu_val + s_out + rng.normal(0, 1, (f_, len(d.val)))
            logits = np.zeros((f_, n_, 3), dtype=np.float32)
            val_logits = np.zeros((f_, len(d.val), 3), dtype=np.float32)
            logits[np.arange(f_)[:, None], np.arange(n_)[None, :], d.labels[None, :]] = margin + math.log(2)
            val_logits[np.arange(f_)[:, None], np.arange(len(d.val))[None, :], d.val_labels[None, :]] = \
                val_margin + math.log(2)
            out = tmp_path / kind / f"split{k}.npz"
            write_bank(out, logits, val_logits, [0.0] * f_, {"split": k, "kind": kind})
            banks[kind].append(out)
    return path, banks


def test_jobs_on_a_synthetic_bank_put_the_references_at_the_two_ends(tmp_path):
    from unlearnbench.report import forgetting

    d = _design(8, 10)
    rng = np.random.default_rng(6)
    # retrained: trained on retain only; original: trained on forget too; "ft": an exact unlearner
    # (another draw of retraining); "ga": halfway
    shifts = {"retrained": (0, 3, 0), "original": (3, 3, 0), "ft": (0, 3, 0), "ga": (1.5, 3, 0)}
    splits, banks = _write_bank_files(tmp_path, d, rng, shifts)
    table = forgetting.epsilon_job(splits, banks, tmp_path / "eps.csv", tmp_path / "eps.md", tmp_path / "eps.npz",
                                   dataset="synthetic", model="m").set_index("method")
    assert list(table.index) == ["retrained", "original", "ft", "ga"]
    assert table.loc["retrained", "models_per_side"] == 4
    s = table["forget_score"]
    assert s["original"] < s["ga"] < min(s["retrained"], s["ft"])
    assert abs(s["retrained"] - s["ft"]) < 0.1
    # 4 models per side: even an exact unlearner scores far below 1 (the noise floor, about 0.26 here)
    assert s["original"] < 0.1 and 0.15 < s["retrained"] < 0.5
    assert (tmp_path / "eps.md").read_text().count("|") > 10
    assert set(pd.read_csv(tmp_path / "eps.csv")["method"]) == set(shifts)


def test_klom_job_on_a_synthetic_bank_orders_the_kinds(tmp_path):
    from unlearnbench.report import forgetting

    d = _design(40, 10)  # 20 models per side: with 4, every kind's KLOM is near log(1e5) (samples share no bin)
    shifts = {"retrained": (0, 3, 0), "original": (3, 3, 0), "ft": (0, 3, 0), "ga": (1.5, 3, 0)}
    splits, banks = _write_bank_files(tmp_path, d, np.random.default_rng(7), shifts)
    kl = forgetting.klom_job(splits, banks, tmp_path / "klom.csv", tmp_path / "klom.md", tmp_path / "klom.npz",
                             dataset="synthetic", model="m")
    p50 = kl.set_index(["method", "role"])["p50"]
    assert 15 <= kl["models_per_side"].iloc[0] <= 20  # about K x F x forget_fraction / 2
    assert p50["original", "forget"] > p50["ga", "forget"] > max(p50["ft", "forget"], p50["retrained", "forget"])
    assert abs(p50["ft", "forget"] - p50["retrained", "forget"]) < 0.5  # an exact unlearner sits at the floor
    gap = p50["original", "forget"] - p50["retrained", "forget"]
    for role in ("retain", "val"):  # no kind differs from retraining there (val: 22 examples, a noisy median)
        assert p50[:, role].max() - p50[:, role].min() < gap / 4
    assert set(pd.read_csv(tmp_path / "klom.csv")["role"]) == {"forget", "retain", "val"}


def test_score_jobs_start_without_torch_and_report_jobs_without_scikit_learn():
    from test_packaging import _modules_after_imports

    for script in ("table_forgetting.py",):
        assert _modules_after_imports(script) == [], script
    # the scripts import each score's functions by name (attacks/registry.py): those, too
    probe = ("import sys\nfrom unlearnbench.attacks.registry import EXAMPLE_SCORES, resolve\n"
             "for s in EXAMPLE_SCORES:\n    resolve(s.table)\n"
             "print(' '.join(m for m in ('torch', 'sklearn') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split() == []
    for script in ("figure_forgetting.py", "table_search.py", "figure_search.py"):
        assert "sklearn" not in _modules_after_imports(script), script
