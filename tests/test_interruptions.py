"""A real run killed with SIGKILL at several points and resumed with README's command
ends with the files of an uninterrupted run (time columns aside); README's command
started beside a live run leaves that run alone."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file

from conftest import SNAKEMAKE, copy_workflow, snakemake, write_config

pytestmark = pytest.mark.workflow

TINY = dict(
    datasets=["digits"], models=["smallcnn"], seeds=[0], methods=["ft", "ga"], device="cpu", precision="fp32",
    training={"digits": {"epochs": 3, "batch_size": 128, "image_size": 16}},
    search={"trials": 2, "seeds": [0]},
    ulira={"enabled": True, "splits": 4, "forget_sets": 2, "forget_fraction": 0.5, "epochs": 2, "methods": ["ft"],
           "min_samples": 4, "search_trials": 2, "search_splits": 1, "one_job": True},
)
TARGETS = ["results/metrics.csv", "results/tables/main.csv", "results/tables/hyperparameters.csv",
           "results/tables/ulira.csv"]
TIME = ("seconds", "duration", "datetime", "RTE")  # a key or column holding one of these is a time


def start(workdir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(SNAKEMAKE + list(args), cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, env={**os.environ, "PYTHONHASHSEED": "0"})


def kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and every job it started
    proc.wait()


def _text(path: Path, pattern: str) -> bool:
    return any(pattern in p.read_text(errors="replace") for p in path.parent.glob(path.name))


def kill_points(work: Path, journals_before: set) -> dict:
    """Name -> whether the run is now at that point (logs/ is emptied before each start,
    so a log that exists belongs to this attempt)."""
    logs, res = work / "logs/digits/smallcnn", work / "results/digits/smallcnn"
    return {
        "reference training": lambda: (logs / "references/seed0.log").exists(),
        "a study's trial 0": lambda: bool(set(res.glob("search/*/seed0.journal")) - journals_before),
        "a later trial of a study": lambda: _text(logs / "search_unlearn/*.log", "trial 0 COMPLETE"),
        "a final run": lambda: _text(logs / "search_unlearn/*.log", "'hp_source': 'search'"),
        "U-LiRA shadow training": lambda: _text(work / "logs/ulira/digits/smallcnn/shadow/all.log",
                                                "forget set 0 original"),
        "a table job": lambda: any((work / "logs/tables").glob("*.log")),
    }


def without_time(value):
    if isinstance(value, dict):
        return {k: without_time(v) for k, v in value.items() if not any(t in k for t in TIME)}
    if isinstance(value, list):
        return [without_time(v) for v in value]
    return value


def _markdown_without_time(text: str) -> list[str]:
    """Table rows with the cells of time columns (header RTE or seconds) left out."""
    rows, drop = [], set()
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is None:
            drop = set()
            rows.append(line)
            continue
        if not drop and not set(cells[0]) <= set("-: "):
            drop = {i for i, c in enumerate(cells) if any(t in c for t in TIME)} or {-1}
        rows.append("|".join(c for i, c in enumerate(cells) if i not in drop))
    return rows


def content(path: Path):
    """What a results file holds, its times left out."""
    if path.suffix == ".csv":
        frame = pd.read_csv(path)
        return frame[[c for c in frame.columns if not any(t in c for t in TIME)]]
    if path.suffix == ".json":
        return without_time(json.loads(path.read_text()))
    if path.suffix == ".npz":
        with np.load(path) as npz:
            return {k: without_time(json.loads(str(npz[k]))) if k == "info" else npz[k]
                    for k in npz.files if k != "seconds"}
    if path.suffix == ".safetensors":
        return load_file(path)
    if path.suffix == ".md":
        return _markdown_without_time(path.read_text())
    return path.read_bytes()


def assert_same(a, b, where: str) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, obj=where)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k}]")
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, where


def results_files(work: Path) -> list[Path]:
    """Every results file but the study journals (Optuna's timestamped logs of the
    trials, whose content is in the trials CSVs) and the LaTeX copies of the tables."""
    return sorted(p.relative_to(work) for p in (work / "results").rglob("*")
                  if p.is_file() and p.suffix not in (".journal", ".tex"))


def test_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    """SIGKILL at each point in turn (whichever the run reaches first), then README's
    `snakemake --unlock && snakemake`; a kill lands mid-job in every other running job
    too. Every results file must equal the uninterrupted run's, times aside."""
    runs = {}
    for name in ("uninterrupted", "killed"):
        runs[name] = copy_workflow(tmp_path / name)
        write_config(runs[name] / "tiny.yaml", **TINY)
    args = [*TARGETS, "--cores", "2", "--configfile", "tiny.yaml"]
    snakemake(runs["uninterrupted"], *args)

    work, hit = runs["killed"], []
    while True:
        shutil.rmtree(work / "logs", ignore_errors=True)
        journals = set((work / "results/digits/smallcnn").glob("search/*/seed0.journal"))
        points = {k: v for k, v in kill_points(work, journals).items() if k not in hit}
        snakemake(work, "--unlock", "--configfile", "tiny.yaml")  # README's resume: unlock, then run
        proc = start(work, *args)
        reached = None
        deadline = time.monotonic() + 900
        while reached is None and proc.poll() is None and time.monotonic() < deadline:
            reached = next((k for k, at in points.items() if at()), None)
            time.sleep(0.02)
        if reached is None:
            proc.wait(timeout=60)
            assert proc.returncode == 0, "the resumed run failed"
            break
        kill(proc)
        hit.append(reached)
    assert len(hit) >= 4, f"killed only at {hit}"  # the others can pass between two polls
    print("killed at:", hit)

    files = results_files(runs["uninterrupted"])
    assert files == results_files(work)
    assert not list(work.rglob("*.tmp")), "a temporary file survived"
    for rel in files:
        assert_same(content(runs["uninterrupted"] / rel), content(work / rel), str(rel))


def test_readme_command_beside_a_live_run_leaves_it_alone(tmp_path):
    """`snakemake --unlock && snakemake` started while a run works in the same folder:
    --unlock refuses (naming the live process), so the lock stays and the second
    `snakemake` never starts; once the run is gone (killed), the same command resumes."""
    work = copy_workflow(tmp_path / "w")
    write_config(work / "tiny.yaml", datasets=["digits"], models=["smallcnn"], seeds=[0], methods=["ft"],
                 device="cpu", search={"trials": 0}, ulira={"enabled": False},
                 training={"digits": {"epochs": 200, "batch_size": 128, "image_size": 16}})
    proc = start(work, "results/metrics.csv", "--cores", "1", "--configfile", "tiny.yaml")
    locks = work / ".snakemake/locks"
    deadline = time.monotonic() + 300
    while not (work / "logs/digits/smallcnn/references/seed0.log").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None and any(locks.iterdir())
    second = subprocess.run(["bash", "-c", " ".join(SNAKEMAKE) + " --unlock --configfile tiny.yaml && "
                             + " ".join(SNAKEMAKE) + " --cores 1 --configfile tiny.yaml"],
                            cwd=work, capture_output=True, text=True, timeout=300)
    assert second.returncode != 0
    assert "not unlocking" in second.stderr and f"pid {proc.pid}" in second.stderr, second.stderr[-2000:]
    assert "Building DAG" not in second.stdout + second.stderr  # the second run never started
    assert proc.poll() is None and any(locks.iterdir())  # the live run and its lock are untouched
    kill(proc)
    snakemake(work, "--unlock", "--configfile", "tiny.yaml")  # after a kill, the same command works
    assert not locks.exists() or not any(locks.iterdir())


def test_what_counts_as_a_snakemake_process():
    from unlearnbench.locks import is_snakemake, live_runs

    assert is_snakemake(["/usr/bin/python", "-m", "snakemake", "--cores", "2"])
    assert is_snakemake(["/venv/bin/snakemake", "--unlock"])
    assert is_snakemake(["python", ".snakemake/scripts/tmpab12.search.py"])  # a job of a run
    assert not is_snakemake(["less", ".snakemake/log/2026.snakemake.log"])
    assert not is_snakemake(["bash", "-c", "snakemake --unlock && snakemake"])  # its children count
    assert os.getpid() not in dict(live_runs(Path.cwd()))  # never this process or its parents
