"""U-LiRA (docs/protocol.md §6): split design, statistic, Gaussian fits, scoring and metrics on
synthetic banks with known answers, the job helpers, and the real Snakemake rules on
a tiny config."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from unlearnbench import config, methods
from unlearnbench.attacks import ulira, ulira_files

REPO = Path(__file__).resolve().parents[1]


def design(n_train=600, n_splits=16, n_forget_sets=2, forget_fraction=0.1, seed=0):
    labels = np.random.default_rng(seed).integers(0, 10, n_train + 100)
    return ulira.make_design(n_train, labels, n_splits, n_forget_sets, forget_fraction=forget_fraction)


def synthetic_values(d: ulira.Design, shift: float, seed: int = 1) -> np.ndarray:
    """Per-example means with unit noise; forgotten entries shifted by `shift`."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.0, 3.0, d.n_pool)
    return mu + rng.normal(0.0, 1.0, d.forget_mask.shape) + shift * d.forget_mask


# ----------------------------------------------------------------------------- statistic


def test_phi_is_finite_and_exact_for_probabilities_0_and_1():
    logits = np.array([[1000.0, 0.0], [-1000.0, 0.0], [0.0, 0.0], [1e4, -1e4]])
    phi = ulira.logit_confidence(logits, np.zeros(4, dtype=int))
    assert np.all(np.isfinite(phi))
    np.testing.assert_allclose(phi, [1000.0, -1000.0, 0.0, 2e4])


def test_phi_matches_the_definition_and_broadcasts_over_models():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, (3, 5, 4))  # (models, examples, classes)
    y = rng.integers(0, 4, 5)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    p_y = np.take_along_axis(p, np.broadcast_to(y, (3, 5))[..., None], -1)[..., 0]
    np.testing.assert_allclose(ulira.logit_confidence(z, y), np.log(p_y) - np.log(1 - p_y), rtol=1e-9)
    half = ulira.logit_confidence(z.astype(np.float16), y)  # banks are float16
    assert half.dtype == np.float64 and np.all(np.isfinite(half))


def test_correctness_statistic_and_unknown_name():
    z = np.array([[2.0, 1.0], [0.0, 3.0]])
    np.testing.assert_array_equal(ulira.statistic(z, np.array([0, 0]), "correctness"), [1.0, 0.0])
    with pytest.raises(ValueError, match="logit, correctness"):
        ulira.statistic(z, np.array([0, 0]), "loss")


# ----------------------------------------------------------------------------- design


def test_split_design_in_halves_forget_sets_and_validation():
    d = design(n_train=600, n_splits=32, n_forget_sets=3)
    n = d.n_pool
    assert len(d.val) == 30 and n == 570  # 5 % of 600 held out
    assert set(d.val).isdisjoint(d.pool) and sorted({*d.val, *d.pool}) == list(range(600))
    assert (d.in_mask.sum(1) == n - n // 2).all()
    share = d.in_mask.mean(0)  # each example IN in about half the splits
    assert abs(share.mean() - 0.5) < 0.01 and 0.1 < share.min() and share.max() < 0.9
    assert (d.forget_mask.sum(2) == math.ceil(0.1 * (n - n // 2))).all()
    assert not (d.forget_mask & ~d.in_mask[:, None, :]).any()  # forget sets inside the IN half
    assert (d.forget_mask.sum(1) > 1).any()  # independent draws: they may overlap, as the reference's
    assert (d.retain_mask(0, 1) == (d.in_mask[0] & ~d.forget_mask[0, 1])).all()


def test_split_design_is_deterministic_and_split_k_does_not_depend_on_k_count():
    a, b = design(n_splits=8), design(n_splits=3)
    np.testing.assert_array_equal(a.in_mask[:3], b.in_mask)
    np.testing.assert_array_equal(a.forget_mask[:3], b.forget_mask)
    np.testing.assert_array_equal(design(n_splits=8).in_mask, a.in_mask)
    assert not (a.in_mask[0] == a.in_mask[1]).all()


def test_split_design_round_trip_and_forget_sets_that_do_not_fit(tmp_path):
    d = design(n_splits=4)
    d.save(tmp_path / "s.npz")
    e = ulira.Design.load(tmp_path / "s.npz")
    for key, value in d.arrays().items():
        np.testing.assert_array_equal(getattr(e, key), value)
    with pytest.raises(ValueError, match="leave a retain set"):
        design(forget_fraction=0.999)
    eleven = design(n_forget_sets=11)  # independent draws: any number of forget sets fits
    assert (eleven.forget_mask.sum(2) == eleven.forget_mask[0, 0].sum()).all()


# ----------------------------------------------------------------------------- fits and scores


def test_variance_is_per_example_above_the_threshold_and_global_below():
    rng = np.random.default_rng(0)
    values = rng.normal(0, 2, (50, 4))
    mask = np.zeros((50, 4), dtype=bool)
    for j, count in enumerate((50, 10, 3, 1)):
        mask[:count, j] = True
    g = ulira.fit_side(values, mask, min_samples=10)
    assert g.per_example.tolist() == [True, True, False, False]
    np.testing.assert_allclose(g.var[:2], [values[:50, 0].var(ddof=1), values[:10, 1].var(ddof=1)])
    pooled = sum(((values[:c, j] - values[:c, j].mean()) ** 2).sum() for j, c in enumerate((50, 10, 3))) / (49 + 9 + 2)
    np.testing.assert_allclose(g.var[2:], [pooled, pooled])
    np.testing.assert_allclose(g.mean, [values[:c, j].mean() for j, c in enumerate((50, 10, 3, 1))])
    assert ulira.fit_side(values, mask, min_samples=51).per_example.sum() == 0


def test_identical_distributions_give_auc_one_half():
    d = design(n_splits=16)
    s = ulira.score(synthetic_values(d, shift=0.0), d, min_samples=8)
    m = ulira.summarise(s)
    se = math.sqrt((m["n_forgotten"] + m["n_never_seen"] + 1) / (12 * m["n_forgotten"] * m["n_never_seen"]))
    assert m["n_forgotten"] > 500 and m["n_targets"] == 32
    assert abs(m["auc"] - 0.5) < 4 * se + 0.01
    assert abs(m["accuracy"] - 0.5) < 0.05 and m["tpr_at_1pct_fpr"] < 0.05


def test_well_separated_distributions_give_auc_near_one():
    d = design(n_splits=16)
    m = ulira.summarise(ulira.score(synthetic_values(d, shift=6.0), d, min_samples=8))
    assert m["auc"] > 0.99 and m["accuracy"] > 0.95 and m["best_balanced_accuracy"] > 0.97
    assert m["tpr_at_1pct_fpr"] > 0.8 and m["mean_p_forgotten"] > 0.9 > 0.1 > m["mean_p_never_seen"]


def test_target_split_is_left_out_of_its_own_fits():
    d = design(n_splits=6)
    values = synthetic_values(d, shift=1.0)
    s = ulira.score(values, d, min_samples=4, targets=[2])
    assert (s.label[[0, 1, 3, 4, 5]] == -1).all()
    others = [k for k in range(6) if k != 2]
    flat = values[others].reshape(-1, d.n_pool)
    g_f = ulira.fit_side(flat, d.forget_mask[others].reshape(-1, d.n_pool), 4)
    g_n = ulira.fit_side(flat, np.repeat(~d.in_mask[others], d.n_forget_sets, axis=0), 4)
    llr, p = ulira.likelihood_ratio(values[2, 1], g_f, g_n)
    sel = s.label[2, 1] >= 0
    assert sel.sum() > 100 and (s.label[2, 1][sel] == d.forget_mask[2, 1][sel]).all()
    np.testing.assert_allclose(s.llr[2, 1][sel], llr[sel], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(s.p[2, 1][sel], p[sel], rtol=1e-4, atol=1e-6)
    # holdout=False (the reference design) fits on the scored models too
    inside = ulira.score(values, d, min_samples=4, targets=[2], holdout=False)
    assert (inside.n_forgotten_fit[2] >= s.n_forgotten_fit[2]).all()
    assert (inside.n_forgotten_fit[2] > s.n_forgotten_fit[2]).any()


def test_membership_probability_is_stable_far_in_the_tails():
    g_f = ulira.Gaussian(np.array([0.0, 0.0]), np.array([1e-8, 1.0]), np.array([5, 5]), np.array([1, 1], bool), 1.0)
    g_n = ulira.Gaussian(np.array([1e3, 0.5]), np.array([1.0, 1.0]), np.array([5, 5]), np.array([1, 1], bool), 1.0)
    llr, p = ulira.likelihood_ratio(np.array([1e3, 0.25]), g_f, g_n)
    assert np.all(np.isfinite(llr)) and p[0] == 0.0 and p[1] == pytest.approx(0.5)


def test_attack_metrics_known_answers():
    label = np.array([1] * 100 + [0] * 900)
    perfect = ulira.attack_metrics(label, np.where(label == 1, 5.0, -5.0))
    assert perfect["auc"] == 1.0 and perfect["accuracy"] == 1.0 and perfect["tpr_at_0_1pct_fpr"] == 1.0
    inverse = ulira.attack_metrics(label, np.where(label == 1, -5.0, 5.0))
    assert inverse["auc"] == 0.0 and inverse["accuracy"] == 0.0 and inverse["tpr_at_1pct_fpr"] == 0.0
    # everything called never seen: balanced accuracy 0.5, not the 0.9 of the majority class
    assert ulira.attack_metrics(label, -np.ones(1000))["accuracy"] == 0.5


# ----------------------------------------------------------------------------- jobs and config


def test_bank_round_trip_clips_to_float16(tmp_path):
    from unlearnbench.attacks import ulira_files

    d = design(n_splits=2)
    logits = np.zeros((2, d.n_pool, 10), dtype=np.float32)
    logits[0, 0, 0] = 1e6
    ulira_files.write_bank(tmp_path / "b.npz", logits, np.zeros((2, len(d.val), 10)), [1.0, 2.0],
                          {"split": 1, "kind": "original"})
    bank = ulira_files.read_bank(tmp_path / "b.npz", d, split=1)
    assert bank["logits"].dtype == np.float16 and np.isfinite(bank["logits"]).all()
    assert bank["info"]["kind"] == "original"
    with pytest.raises(Exception, match="expected 0"):
        ulira_files.read_bank(tmp_path / "b.npz", d, split=0)


def test_config_ulira_section_defaults_and_errors():
    cfg = config.validate_ulira(config.validate({"ulira": {"splits": 4, "methods": "all"}}))
    u = cfg["ulira"]
    assert u["target_splits"] == [0, 1, 2, 3] and u["search_splits"] == 4
    assert u["methods"] == [m for m in methods.names() if methods.applies(m, "random")]  # not UNSIR, BS
    assert u["statistic"] == "logit" and u["min_samples"] == 32 and u["val_fraction"] == 0.05
    assert config.ulira_recipe(config.validate({"ulira": {"dataset": "cifar10"}}))["epochs"] == 91
    for bad, words in [({"model": "vgg"}, ["ulira.model", "smallcnn"]), ({"methods": ["nope"]}, ["ulira.methods"]),
                       ({"splits": 4, "target_splits": [4]}, ["ulira.target_splits"]),
                       ({"methods": ["ft", "unsir"]}, ["ulira.methods", "UNSIR is a class-wise method"])]:
        with pytest.raises(config.ConfigError) as err:
            config.validate_ulira(config.validate({"ulira": {"enabled": True, **bad}}))
        assert all(w in str(err.value) for w in words)
    with pytest.raises(config.ConfigError, match="no method 'kde'"):
        config.validate_ulira(config.validate({"methods": ["ft"], "search": {"trials": 5},
                                               "ulira": {"enabled": True, "methods": ["ft", "kde"]}}))
    with pytest.raises(config.ConfigError, match="statistic"):
        config.validate({"ulira": {"statistic": "loss"}})


# ----------------------------------------------------------------------------- workflow


@pytest.mark.workflow
def test_ulira_workflow_on_a_tiny_config(tmp_path):
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    for name in ("workflow", "envs"):
        if (REPO / name).exists():
            shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    tiny = {"datasets": ["digits"], "models": ["smallcnn"], "seeds": [0], "methods": ["ft"], "device": "cpu",
            "training": {"digits": {"epochs": 4, "batch_size": 128}}, "method_params": {"ft": {"epochs": 1}},
            "ulira": {"enabled": True, "splits": 6, "forget_sets": 2, "forget_fraction": 0.5, "epochs": 2,
                      "methods": ["ft"], "min_samples": 4}}
    # 6 splits: 3 models per side per example for table_epsilon / table_klom (4 splits give 2: no score)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "table_ulira", "figure_ulira", "--cores", "2",
                           "--configfile", "tiny.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    base = tmp_path / "results/ulira/digits/smallcnn"
    assert not list((base / "shadow").glob("*.safetensors"))  # originals' weights are temporary
    bank = np.load(base / "banks/ft/split3.npz")
    assert bank["logits"].dtype == np.float16 and bank["logits"].shape[:2] == (2, 1366)
    metrics = {k: json.loads((base / f"scores/{k}.json").read_text()) for k in ("retrained", "original", "ft")}
    assert abs(metrics["retrained"]["auc"] - 0.5) < 0.08, metrics  # measured 0.502 (original 0.507) with 4 splits
    table = (tmp_path / "results/tables/ulira.csv").read_text().splitlines()
    assert table[0].startswith("dataset,model,method") and [r.split(",")[2] for r in table[1:]] == \
        ["retrained", "original", "ft"]
    for path in ("results/tables/ulira.md", "figures/ulira.png", "figures/ulira.pdf"):
        assert (tmp_path / path).stat().st_size > 0
    # the HTML report holds the U-LiRA table and figure
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--report", "report.html", "table_ulira", "figure_ulira",
                           "--configfile", "tiny.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    html = (tmp_path / "report.html").read_text(errors="replace")
    assert "ulira.png" in html and "ulira.csv" in html
    # the forgetting scores and the search trade-offs build from these artifacts alone: a dry run lists
    # only their own rules (no shadow model, search or unlearning job)
    mine = ["table_epsilon", "table_klom", "figure_epsilon", "figure_klom", "table_search", "figure_search"]
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", *mine, "--configfile", "tiny.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    stats = (proc.stdout + proc.stderr).split("Job stats:")[1].split("total")[0]
    assert {line.split()[0] for line in stats.splitlines()[3:] if line.strip()} == set(mine), stats
    proc = subprocess.run([sys.executable, "-m", "snakemake", *mine, "--cores", "2", "--configfile", "tiny.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    eps = pd.read_csv(tmp_path / "results/tables/epsilon.csv").set_index("method")
    klom = pd.read_csv(tmp_path / "results/tables/klom.csv").set_index(["method", "role"])
    assert list(eps.index) == ["retrained", "original", "ft"] and (eps["models_per_side"] == 3).all()
    # the references at the two ends: retraining is the noise floor, the original (which saw the forget
    # examples, and twice the data) scores far below it (measured with 6 x 2 splits, 6 epochs: 0.05 vs 0.36)
    assert eps.loc["original", "forget_score"] < eps.loc["retrained", "forget_score"] - 0.1, eps
    # KLOM with 3 models per side is near log(1e5) for every kind (its ordering is tested on synthetic banks)
    assert set(klom.index.get_level_values("role")) == {"forget", "retain", "val"}
    assert "too small for this score" in (tmp_path / "results/tables/klom.md").read_text()
    for path in ("results/tables/epsilon.md", "results/tables/klom.md", "results/tables/search_tradeoffs.md",
                 "figures/epsilon.png", "figures/klom.png", "figures/search_digits_smallcnn.png"):
        assert (tmp_path / path).stat().st_size > 0


def test_ulira_search_uses_the_first_search_splits_and_forget_set_0(tmp_path, monkeypatch):
    """docs/reference.md U9: one study per split 0 .. search_splits - 1, each on forget
    set 0 of its split, against that split's retrained model of forget set 0 (the dry
    run lists the studies; the job is run up to its study, whose inputs are checked)."""
    from conftest import copy_workflow, snakemake, write_config
    from unlearnbench import methods
    from unlearnbench.config import SearchSettings
    from unlearnbench.jobs import search as search_jobs
    from unlearnbench.jobs import ulira as ulira_jobs

    copy_workflow(tmp_path / "w")
    write_config(tmp_path / "w/tiny.yaml", models=["smallcnn"], methods=["ft"], search={"trials": 0},
                 ulira={"enabled": True, "splits": 4, "forget_sets": 2, "forget_fraction": 0.5, "methods": ["ft"],
                        "search_trials": 2, "search_splits": 3})
    out = snakemake(tmp_path / "w", "table_ulira", "-n", "--configfile", "tiny.yaml").stdout
    searched = sorted(set(re.findall(r"search/ft/split(\d+)\.csv", out)))
    assert searched == ["0", "1", "2"], out[-2000:]

    ulira_jobs.write_design("digits", tmp_path / "splits.npz", 2, 2, forget_fraction=0.5)
    ctx = ulira_jobs.ShadowContext("digits", tmp_path / "splits.npz", device="cpu", threads=1)
    monkeypatch.setattr(ulira_jobs, "train", lambda *args, **kwargs: 0.0)
    seen = {}

    def capture(name, method, settings, seed, sampler_seed, unlearn, measure, reference, inputs, out_csv,
                progress=True):
        seen.update(reference=reference, inputs=inputs)
        unlearn({}, 0)

    def fake_run(method, net, data, num_classes, hp, generator, precision=None):
        seen["forget"] = data["forget"]
        return net, 0.0

    monkeypatch.setattr(search_jobs, "run_search", capture)
    monkeypatch.setattr(methods, "run", fake_run)
    split = 1
    ulira_jobs.train_shadow_split(ctx, "smallcnn", split, {"epochs": 1}, tmp_path / "o.npz", tmp_path / "r.npz",
                                  tmp_path / "w.safetensors")
    ulira_jobs.search_job(ctx, "smallcnn", "ft", split, SearchSettings(2, 1, {}), tmp_path / "w.safetensors",
                          tmp_path / "r.npz", tmp_path / "s.csv", progress=False)
    d = ctx.design
    bank = ulira_files.read_bank(tmp_path / "r.npz", d, split)
    assert seen["reference"] == ulira_jobs.metrics_from_logits(d, split, 0, bank["logits"][0], bank["val_logits"][0])
    assert seen["reference"] != ulira_jobs.metrics_from_logits(d, split, 1, bank["logits"][1], bank["val_logits"][1])
    expected = ctx.unlearn_data(split, 0)["forget"]
    assert torch.equal(seen["forget"].labels, expected.labels) and torch.equal(seen["forget"].images, expected.images)
    assert not torch.equal(seen["forget"].images[:5], ctx.unlearn_data(split, 1)["forget"].images[:5])
    assert seen["inputs"]["split"] == split
