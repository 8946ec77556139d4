"""The reviewer's path at fixture scale: stand-in data in the real on-disk formats
(unlearnbench.fixtures), read by torchvision's own dataset classes; configs/paper-fixture.yaml
keeps the paper's DAG; a missing dataset is named before any job starts."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections import defaultdict

import numpy as np
import pytest

from unlearnbench import data, data_files, fixtures

from conftest import REPO, copy_workflow, snakemake

DATASETS = ["mnist", "fashion_mnist", "cifar10", "cifar100", "utkface"]
CLASSES = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 100, "utkface": 5}


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("fixtures")
    fixtures.write_all(out, train_per_class=11, test_per_class=1, utkface_per_class=27)  # the smallest allowed
    return out


def _digest(folder) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def test_fixtures_are_deterministic(fixture_dir, tmp_path):
    fixtures.write_all(tmp_path, train_per_class=11, test_per_class=1, utkface_per_class=27)
    assert _digest(tmp_path) == _digest(fixture_dir)


def test_fixtures_too_small_for_the_attack_are_refused_before_writing(tmp_path):
    """100 mnist train images give a forget set of 9 (docs/protocol.md §2), under the 10
    members the MIA needs."""
    assert fixtures.split_sizes(100, 10) == {"retain": 76, "forget": 9, "val": 15, "test": 10}
    for n_train in (100, 111, 123):  # as the workflow's splits
        assert fixtures.split_sizes(n_train, 10) == {k: len(v) for k, v in data.make_splits(n_train, n_train + 10).items()}
    with pytest.raises(ValueError, match=r"mnist: 100 train / 10 test images give a \{'forget': 9\}"):
        fixtures.write_all(tmp_path / "out", train_per_class=10, test_per_class=1)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", DATASETS)
def test_torchvision_reads_every_fixture_with_every_class(fixture_dir, name):
    pool = data.load_pool(name, fixture_dir, verify_checksums=False, image_size=16)
    assert pool.images.shape[1:] == (3, 16, 16) and str(pool.images.dtype) == "torch.uint8"
    n_classes = CLASSES[name]
    assert set(pool.labels[:pool.n_train].tolist()) == set(range(n_classes))
    if name != "utkface":  # utkface's test part is a random 20 %, as the reference's
        assert set(pool.labels[pool.n_train:].tolist()) == set(range(n_classes))
    assert data_files.problem(name, fixture_dir, download=False) is None


def test_real_cifar_files_keep_being_checked(fixture_dir):
    """The stand-in CIFAR files fail torchvision's MD5 check unless verify_checksums is off."""
    with pytest.raises(data.DatasetMissingError, match="cifar10"):
        data.load_pool("cifar10", fixture_dir)


def test_utkface_keeps_the_malformed_names_and_splits_as_the_reference(fixture_dir):
    """The reference (munl/datasets/utkface.py) keeps every *.jpg, labels min(age // 20, 4),
    and puts the first 20 % of default_rng(123).permutation(n) in the test part."""
    names = data.utkface_files(fixture_dir / "UTKFace")
    assert set(fixtures.UTKFACE_MALFORMED) <= set(names)
    n = len(names)
    labels = np.array([min(int(x.split(".")[0].split("_")[0]) // 20, 4) for x in names])
    perm = np.random.default_rng(123).permutation(np.arange(n))
    n_test = int(0.2 * n)
    pool = data.load_pool("utkface", fixture_dir, image_size=8)
    assert pool.n_train == n - n_test
    assert pool.labels.tolist() == labels[np.concatenate([perm[n_test:], perm[:n_test]])].tolist()
    assert data.fetch("utkface", fixture_dir)["without_race_field"] == 3


def test_a_missing_dataset_names_its_folder_layout_and_source(tmp_path):
    message = data_files.problem("cifar100", tmp_path, download=False)
    assert "cifar100" in message and str(tmp_path / "cifar-100-python") in message and "download: true" in message
    assert data_files.problem("cifar100", tmp_path, download=True) is None
    utk = data_files.problem("utkface", tmp_path, download=True)  # no download exists
    assert "susanqq.github.io/UTKFace" in utk and "download: true" not in utk
    with pytest.raises(data.DatasetMissingError, match="susanqq"):
        data.load_pool("utkface", tmp_path)


def test_missing_data_fails_before_any_job(tmp_path, fixture_dir):
    work = copy_workflow(tmp_path / "work")
    shutil.copytree(REPO / "configs", work / "configs")
    data_dir = tmp_path / "data"
    shutil.copytree(fixture_dir, data_dir)
    shutil.rmtree(data_dir / "cifar-100-python")
    run = snakemake(work, "-c1", "--configfile", "configs/paper.yaml", "configs/paper-fixture.yaml",
                    "--config", f"data_dir={data_dir}", check=False)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert f"dataset 'cifar100': expected {data_dir}/cifar-100-python/" in out and "download: true" in out
    assert "mnist':" not in out  # the present ones are not named
    assert not (work / "results").exists() and not (work / "logs").exists(), "a job started"


# --- the overlay keeps the paper's DAG -------------------------------------------------------

# Wildcards that only count things the overlay shrinks: model seeds and U-LiRA's splits.
COUNTS = {"seed", "split"}


def _dag(work, *configfiles) -> dict[str, set]:
    """rule -> the set of its jobs' wildcard values, counts left out, from a dry run."""
    run = snakemake(work, "-n", "--configfile", *configfiles, "--config", "data_dir=absent")
    jobs = defaultdict(set)
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", run.stdout):
        head = re.match(r"(?:local)?rule (\w+):", block)
        if not head:
            continue
        wild = re.search(r"^\s+wildcards: (.*)$", block, flags=re.M)
        pairs = dict(kv.split("=", 1) for kv in wild.group(1).split(", ")) if wild else {}
        jobs[head.group(1)].add(tuple(sorted((k, v) for k, v in pairs.items() if k not in COUNTS)))
    return jobs


def test_the_fixture_overlay_keeps_the_paper_dag(tmp_path):
    work = copy_workflow(tmp_path / "work")
    shutil.copytree(REPO / "configs", work / "configs")
    paper = _dag(work, "configs/paper.yaml")
    fixture = _dag(work, "configs/paper.yaml", "configs/paper-fixture.yaml")
    assert sorted(fixture) == sorted(paper)
    for rule in paper:
        assert fixture[rule] == paper[rule], rule
    methods = {dict(w)["method"] for w in paper["unlearn"]}
    assert len(methods) == 18 and len(paper["unlearn"]) == 5 * 2 * 18


# --- figures survive a column that is NaN on every row ---------------------------------------

@pytest.mark.workflow
def test_every_figure_survives_columns_nan_on_every_row(tmp_path):
    """At fixture scale every model can get every forget example wrong (FA = 0: FR and
    RetDev undefined on every row), and an attack can be undefined (MIA NaN:
    Indisc NaN): the tables print "–", the figures are drawn with a note."""
    from synthetic import synthetic_metrics

    work = copy_workflow(tmp_path / "wf")
    (work / "results").mkdir()
    frame = synthetic_metrics(settings=(("digits", "smallcnn"), ("digits", "resnet18")), seeds=(0, 1),
                              methods=["ft", "ga", "scrub"], rng_seed=1)
    frame["forget_acc"] = 0.0  # FR = 0 / 0
    frame[["val_mia", "test_mia"]] = np.nan
    frame.to_csv(work / "results/metrics.csv", index=False)
    figures = ["figure_retention", "figure_rte", "figure_rank_heatmap", "figure_seed_spread",
               "figure_critical_difference"]
    snakemake(work, "--cores", "2", *figures)
    for name in ("retention_vs_indiscernibility", "rte", "rank_heatmap", "seed_spread", "critical_difference"):
        assert (work / f"figures/{name}.png").stat().st_size > 0, name
    main = (work / "results/tables/main.md").read_text()
    assert "–" in main


def test_a_ulira_table_without_attack_pairs_says_why(tmp_path):
    from unlearnbench import io
    from unlearnbench.attacks import ulira
    from unlearnbench.report import tables

    paths = []
    for kind, label in (("retrained", np.array([0, 0, 0])), ("ft", np.array([1, 0, 1, 0]))):
        metrics = ulira.attack_metrics(label, np.linspace(-1, 1, len(label)))
        row = {"dataset": "cifar10", "model": "resnet18", "kind": kind, "splits": 4, "forget_sets": 4,
               "statistic": "logit", "min_samples": 32, "holdout": True, "auc_std": np.nan, "n_unscored": 7,
               "mean_p_forgotten": np.nan, "mean_p_never_seen": 0.4, "forget_acc": 0.1, "out_acc": 0.1,
               **metrics}
        paths.append(tmp_path / f"{kind}.json")
        io.write_json(paths[-1], row)
    tables.write_ulira_table(paths, tmp_path / "u.csv", tmp_path / "u.md")
    md = (tmp_path / "u.md").read_text()
    assert "Retrained (reference): no forgotten pairs" in md and "7 target pairs were left unscored" in md
    assert "raise ulira.splits or ulira.forget_sets" in md and "FT:" not in md


def test_the_overlay_ulira_bank_scores_pairs_on_the_default_fixture(tmp_path):
    """configs/paper-fixture.yaml's U-LiRA bank, on `python -m unlearnbench.fixtures`'s
    default cifar10, gives both kinds of attack pairs (2 splits give none)."""
    import yaml

    from unlearnbench.attacks import ulira

    u = yaml.safe_load((REPO / "configs/paper-fixture.yaml").read_text())["ulira"]
    paper = yaml.safe_load((REPO / "configs/paper.yaml").read_text())["ulira"]
    fixtures.write_all(tmp_path)  # the defaults
    pool = data.load_pool("cifar10", tmp_path, verify_checksums=False, image_size=4)
    counts = {}
    for k in (2, u["splits"]):
        design = ulira.make_design(pool.n_train, pool.labels.numpy(), k, u["forget_sets"], paper["val_fraction"],
                                   paper["forget_fraction"])
        values = np.random.default_rng(0).normal(size=(k, u["forget_sets"], design.n_pool))
        m = ulira.summarise(ulira.score(values, design, paper["min_samples"]))
        counts[k] = (m["n_forgotten"], m["n_never_seen"])
    assert counts[2] == (0, 0)
    assert min(counts[u["splits"]]) > 0, counts


# --- through SLURM: a slice of the overlay, TinyViT at the paper's 224x224 ---------------------

@pytest.mark.slurm
@pytest.mark.workflow
def test_the_fixture_overlay_runs_through_slurm(tmp_path):
    """`--profile profiles/slurm` on the overlay, narrowed to utkface / tinyvit11m at
    224x224 and one method with U-LiRA off (the whole overlay does not fit CI:
    docs/performance.md): fixtures -> fetch_data -> splits -> SLURM jobs -> every table
    and figure of `all`, a row per (dataset, model, method), every number finite or
    flagged. TinyViT runs at utkface's 224x224: the overlay sets no image_size
    (test_shipped_configs.py). Memory requests are cut to the fixtures' size (utkface
    asks for 24 GB, more than a CI node has)."""
    import json
    import os
    import subprocess
    import sys

    import pandas as pd
    import yaml

    from test_slurm import _cluster_problem

    problem = _cluster_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"SLURM test cannot run in CI: {problem}")
        pytest.skip(problem)
    work = copy_workflow(tmp_path / "work")
    shutil.copytree(REPO / "configs", work / "configs")
    data_dir = tmp_path / "data"
    fixtures.write_all(data_dir, train_per_class=11, test_per_class=1, utkface_per_class=27)
    (work / "narrow.yaml").write_text(yaml.safe_dump(
        {"datasets": ["utkface"], "models": ["tinyvit11m"], "methods": ["ft"], "ulira": {"enabled": False}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SNAKEMAKE_PROFILE"))}
    cmd = ["--profile", "profiles/slurm", "--slurm-status-command", "squeue", "--slurm-no-account",
           "--slurm-init-seconds-before-status-checks", "2",
           "--set-resources", *(f"{r}:mem_mb=3000" for r in ("train_reference", "search", "unlearn")),
           "--configfile", "configs/paper.yaml", "configs/paper-fixture.yaml", "narrow.yaml",
           "--config", f"data_dir={data_dir}"]
    proc = subprocess.run([sys.executable, "-m", "snakemake", *cmd], cwd=work, env={**env, "PYTHONHASHSEED": "0"},
                          capture_output=True, text=True, timeout=1500)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "has been submitted with SLURM jobid" in out
    main = pd.read_csv(work / "results/tables/main.csv")
    assert set(main["method"]) == {"original", "retrained", "ft"}
    metrics = pd.read_csv(work / "results/metrics.csv")
    assert metrics[["retain_acc", "forget_acc", "val_acc", "test_acc"]].notna().all().all()
    for name in ("retention_vs_indiscernibility", "rte", "rank_heatmap", "seed_spread", "critical_difference"):
        assert (work / f"figures/{name}.png").stat().st_size > 0, name
    info = json.loads((work / "results/utkface/tinyvit11m/original/seed0.json").read_text())
    assert info["epochs"] == 1 and json.loads((work / "results/provenance.json").read_text())[
        "config"]["verify_checksums"] is False
