"""Real Snakemake runs of the workflow on a tiny config in a temporary folder."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import SNAKEMAKE, copy_workflow, snakemake, write_config

pytestmark = pytest.mark.workflow

TINY = {
    "datasets": ["digits"],
    "models": ["smallcnn"],
    "seeds": [0, 1],
    "methods": ["ft", "ga", "ct", "ssd", "unsir"],  # SSD beyond the paper; UNSIR n/a (class-wise)
    "training": {"digits": {"epochs": 15}},
    "search": {"trials": 0},
    "ulira": {"enabled": False},
    "keep_unlearned": True,
    "device": "cpu",
}
TIMING = ["seconds"]


def run_tiny(workdir: Path, config: dict = TINY) -> pd.DataFrame:
    copy_workflow(workdir)
    write_config(workdir / "tiny.yaml", **config)
    snakemake(workdir, "--cores", "2", "--configfile", "tiny.yaml")
    return pd.read_csv(workdir / "results/metrics.csv")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("run_a")
    run_tiny(workdir)
    return workdir


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Parse Snakemake's 'Job stats' table of a dry run."""
    counts = {}
    block = dry_run_output.split("Job stats:", 1)[1] if "Job stats:" in dry_run_output else ""
    for line in block.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        counts[match[1]] = int(match[2])
    counts.pop("total", None)
    return counts


def test_outputs_exist_and_results_make_sense(finished):
    every = pd.read_csv(finished / "results/metrics.csv")
    assert set(every["method"]) == {"original", "retrained", "ft", "ga", "ct", "ssd", "unsir"} and len(every) == 14
    # UNSIR does not apply to random forget sets: no job, no log, n/a rows with the reason
    na = every[every["method"] == "unsir"]
    assert not na["applicable"].any() and na["retain_acc"].isna().all() and list(na["seed"]) == [0, 1]
    assert (na["na_reason"] == "UNSIR is a class-wise method: defined for the class and subclass scenarios").all()
    assert not (finished / "logs/digits/smallcnn/unlearn/unsir.log").exists()
    main = (finished / "results/tables/main.md").read_text()
    assert "| UNSIR† " in main and "| SSD† " in main and "† not among the paper's 18" in main
    assert "unsir" not in set(pd.read_csv(finished / "results/tables/rankings.csv")["method"])
    metrics = every[every["applicable"]]
    assert sorted(metrics["seed"].unique()) == [0, 1]
    for column in ["retain_acc", "forget_acc", "val_acc", "test_acc", "val_mia", "test_mia"]:
        assert metrics[column].between(0, 1).all(), column
    assert (metrics["seconds"] > 0).all()
    by = metrics.groupby("method").mean(numeric_only=True)
    assert abs(by.loc["retrained", "val_mia"] - 0.5) < 0.1  # never saw the forget set
    assert by.loc["original", "forget_acc"] > by.loc["original", "test_acc"]  # memorisation is visible
    assert by.loc["original", "test_acc"] > 0.85
    for path in ["results/tables/main.csv", "results/tables/main.md", "figures/retention_vs_indiscernibility.png",
                 "figures/retention_vs_indiscernibility.pdf", "results/digits/splits.npz",
                 "results/digits/smallcnn/init/seed0.safetensors", "results/digits/smallcnn/retrained/seed0.json",
                 # one unlearn job per method ran both seeds; keep_unlearned kept the weights
                 "results/digits/smallcnn/unlearned/ft/seed0.safetensors",
                 "results/digits/smallcnn/unlearned/ft/seed1.safetensors", "logs/digits/smallcnn/unlearn/ft.log"]:
        assert (finished / path).stat().st_size > 0, path
    assert not list(finished.glob("results/**/*.tmp")), "temporary files left behind"
    assert {"diverged", "nonfinite_fraction", "hp_source", "device", "precision"} <= set(metrics.columns)
    assert set(metrics["hp_source"]) == {"recipe", "config"} and set(metrics["device"]) == {"cpu"}
    assert (finished / "results/provenance.json").stat().st_size > 0
    for log in (finished / "logs").rglob("*.log"):
        assert log.read_text().strip(), f"empty log {log}"
    train_log = (finished / "logs/digits/smallcnn/references/seed0.log").read_text()
    assert train_log.count("15/15") >= 2  # tqdm progress of both references went to the log


def test_rerun_has_nothing_to_do(finished):
    out = snakemake(finished, "-n", "--configfile", "tiny.yaml")
    assert "Nothing to be done" in out.stdout + out.stderr


def test_changing_one_method_reruns_only_its_jobs(finished):
    write_config(finished / "changed.yaml", **{**TINY, "method_params": {"ft": {"epochs": 2}}})
    out = snakemake(finished, "-n", "--configfile", "changed.yaml")
    counts = job_counts(out.stdout)
    assert counts.pop("unlearn") == 1 and counts.pop("metrics") == 1 and counts.pop("all") == 1, out.stdout
    report_rules = [r for r in counts if r.startswith(("table_", "figure_")) or r == "provenance"]
    assert counts and report_rules == list(counts), counts
    outputs = [o for line in re.findall(r"output: (.+)", out.stdout) for o in line.split(", ")]
    assert {"results/digits/smallcnn/metrics/ft/seed0.json", "results/digits/smallcnn/metrics/ft/seed1.json"} <= set(outputs)
    assert not [o for o in outputs if "/metrics/ga/" in o or "/metrics/ct/" in o]


def test_bad_config_fails_before_any_job(finished):
    write_config(finished / "bad.yaml", **{**TINY, "methods": ["ft", "fine_tuning"]})
    out = snakemake(finished, "-n", "--configfile", "bad.yaml", check=False)
    assert out.returncode != 0
    message = out.stdout + out.stderr
    assert "'fine_tuning'" in message and "valid: ft, ga" in message
    assert "Building DAG" not in message


def without_timing(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=TIMING).sort_values(["dataset", "model", "method", "seed"]).reset_index(drop=True)


def test_killed_run_resumes_to_the_same_metrics(finished, tmp_path):
    """SIGKILL Snakemake and its jobs part-way; the Quickstart command then completes and
    metrics.csv equals the uninterrupted run's (so also: same config + seed = same metrics)."""
    workdir = copy_workflow(tmp_path / "run_b")
    write_config(workdir / "tiny.yaml", **TINY)
    proc = subprocess.Popen(SNAKEMAKE + ["--cores", "2", "--configfile", "tiny.yaml"], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first = workdir / "results/digits/smallcnn/metrics/original/seed0.json"
    deadline = time.time() + 600
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)  # let the next jobs start, then kill everything mid-flight
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (workdir / "results/metrics.csv").exists()
    # README's first command: clear the lock the killed run left, then run again.
    snakemake(workdir, "--unlock", "--configfile", "tiny.yaml")
    snakemake(workdir, "--cores", "2", "--configfile", "tiny.yaml")
    resumed = pd.read_csv(workdir / "results/metrics.csv")
    uninterrupted = pd.read_csv(finished / "results/metrics.csv")
    pd.testing.assert_frame_equal(without_timing(resumed), without_timing(uninterrupted))


def test_lint_is_clean_and_snakefiles_formatted(finished):
    out = snakemake(finished, "--lint", "--configfile", "tiny.yaml", check=False)
    text = out.stdout + out.stderr
    assert "Congratulations, your workflow is in a good condition!" in text, text[-3000:]
    files = ["Snakefile", *map(str, sorted((finished / "workflow/rules").glob("*.smk")))]
    fmt = subprocess.run(["snakefmt", "--check", *files], cwd=finished, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
