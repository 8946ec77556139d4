"""The SLURM path end to end, on a real SLURM cluster.

`bash .ci/start_slurm.sh` starts a one-node cluster on this machine (root, Debian).
The test runs the workflow with `--profile profiles/slurm` on a tiny configuration,
every non-local job going through sbatch; one cluster job is made to fail once, and
the run must retry it; a second run must find nothing to do, and a run after one
output is deleted must redo that job only.

Outside CI the test is skipped when no cluster answers; with CI=true it fails.
It takes about 5 minutes on a 2-core machine (Python start-up in every cluster job).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, SNAKEMAKE, copy_workflow, write_config

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

TARGETS = ["results/metrics.csv", "results/tables/main.csv"]
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.?$", re.M)
FINISHED = re.compile(r"^Finished jobid: \d+ \(Rule: (\w+)\)$", re.M)
RUN_TIMEOUT = 900  # seconds, one snakemake run


def _cluster_problem():
    """Why the SLURM test cannot run here, or None."""
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except Exception:  # noqa: BLE001 - any failure to load it means no SLURM runs here
        return "snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')"
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no SLURM client (sinfo, sbatch); start a cluster with `bash .ci/start_slurm.sh`"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer in 30 s; is slurmctld running? (`bash .ci/start_slurm.sh`)"
    states = out.stdout.split()
    if out.returncode != 0 or not any(s.rstrip("*~#") in ("idle", "mixed", "allocated") for s in states):
        return f"no SLURM node is up (sinfo: {(out.stdout + out.stderr).strip()!r}); run `bash .ci/start_slurm.sh`"
    return None


@pytest.fixture(scope="module")
def cluster():
    problem = _cluster_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"SLURM test cannot run in CI: {problem}")
        pytest.skip(problem)


def _tiny_config():
    config = {
        "datasets": ["digits"],
        "models": ["smallcnn"],
        "seeds": [0],
        "methods": ["ft", "ga"],
        "training": {"digits": {"epochs": 2}},
        "search": {"trials": 0},
        "device": "cpu",
    }
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    ulira = schema["properties"].get("ulira", {})
    if "enabled" in ulira.get("properties", {}):
        config["ulira"] = {"enabled": False}
    return config


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, cluster):
    work = copy_workflow(tmp_path_factory.mktemp("slurm"))
    write_config(work / "config.yaml", **_tiny_config())  # replaces the embedded default
    return work


def snakemake(work, *extra, check=True):
    """Run snakemake with the SLURM profile in `work`; returns its combined output."""
    cmd = [
        *SNAKEMAKE,
        "--profile", "profiles/slurm",
        # The test cluster keeps no accounting database (sacct has nothing to say).
        "--slurm-status-command", "squeue",
        "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks", "2",
        "--slurm-keep-successful-logs",
        *extra,
        *TARGETS,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SNAKEMAKE_PROFILE"))}
    env["PYTHONHASHSEED"] = "0"
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    out = proc.stdout + proc.stderr
    (work / f"run{len(list(work.glob('run*.log')))}.log").write_text(out)
    if check and proc.returncode != 0:
        pytest.fail(f"snakemake failed ({proc.returncode}):\n{out[-6000:]}")
    return out


def submissions(work, out):
    """The SLURM log of each sbatch call, relative to .snakemake/slurm_logs, e.g.
    rule_train_reference/digits_smallcnn_original_0/2.log or group_unlearn_.../4.log."""
    base = (work / ".snakemake/slurm_logs").resolve()
    return [Path(log).resolve().relative_to(base).as_posix() for _, log in SUBMITTED.findall(out)]


def minutes(time_limit):
    """SLURM's [D-]HH:MM:SS as minutes."""
    days, _, clock = time_limit.rpartition("-")
    h, m, s = (int(x) for x in clock.split(":"))
    return int(days or 0) * 1440 + h * 60 + m + (s > 0)


def test_slurm_end_to_end_retry_and_resume(workdir):
    work = workdir
    marker = work / "failed-once"

    # 1. Full run. The first cluster job fails before it starts work (the precommand
    #    runs in the sbatch job, ahead of Snakemake); restart-times must resubmit it.
    out = snakemake(work, "--precommand", f"! mkdir {marker} 2>/dev/null")
    logs = submissions(work, out)
    assert marker.is_dir(), "the precommand never ran on the cluster"
    assert "Trying to restart job" in out, out[-4000:]
    # train_reference (both references of seed 0) and its retry; unlearn: one group job.
    train = [log for log in logs if log.startswith("rule_train_reference/")]
    assert {log.split("/")[1] for log in train} == {"digits_smallcnn_0"}
    assert len(train) == 2, logs
    assert sum(log.startswith("group_unlearn_digits_smallcnn") for log in logs) == 1, logs
    assert len(logs) == 3, logs
    # Each sbatch job left its own log, and no other job ran on the cluster.
    base = work / ".snakemake/slurm_logs"
    assert sorted(p.relative_to(base).as_posix() for p in base.rglob("*.log")) == sorted(logs)
    # The plugin runs a group's jobs one after another: the group asks for their summed
    # run time (profiles/slurm's `slots`), not the longest one's.
    group_id = next(jobid for jobid, log in SUBMITTED.findall(out) if "group_unlearn" in log)
    block = out.split("Group job unlearn_digits_smallcnn", 1)[1].split("has been submitted", 1)[0]
    # Other jobs' submissions may be printed inside the block: read the unlearn jobs' own.
    runtimes = [int(r) for r in re.findall(r"rule unlearn:.*?\bruntime=(\d+)", block, re.S)]
    assert len(runtimes) == 2, block
    job = subprocess.run(["scontrol", "-o", "show", "job", group_id], capture_output=True, text=True).stdout
    fields = dict(f.split("=", 1) for f in job.split() if "=" in f)
    assert minutes(fields["TimeLimit"]) == sum(runtimes), job
    # Every non-local job that finished was one of the submitted ones.
    finished = FINISHED.findall(out)
    assert sorted(r for r in finished if r in ("train_reference", "unlearn")) == ["train_reference"] + ["unlearn"] * 2
    assert {"splits", "metrics", "table_main"} <= set(finished)

    metrics = pd.read_csv(work / "results/metrics.csv")
    assert sorted(metrics["method"]) == ["ft", "ga", "original", "retrained"]
    assert set(metrics["dataset"]) == {"digits"} and set(metrics["model"]) == {"smallcnn"}
    for column in ("retain_acc", "forget_acc", "val_acc", "test_acc", "val_mia", "test_mia"):
        assert metrics[column].between(0, 1).all(), column
    assert (work / "results/tables/main.csv").stat().st_size > 0

    # 2. Complete: a dry run finds nothing to do.
    out = snakemake(work, "--dry-run")
    assert "Nothing to be done" in out, out[-3000:]

    # 3. Resume: with one unlearned model's metrics (and the collected table) gone, only
    #    that job is redone on the cluster; trained models and the other method are kept.
    kept = {p: p.stat().st_mtime_ns for p in (work / "results/digits/smallcnn").rglob("*") if p.is_file()}
    gone = work / "results/digits/smallcnn/metrics/ga/seed0.json"
    gone.unlink()
    (work / "results/metrics.csv").unlink()
    del kept[gone]
    out = snakemake(work)
    logs = submissions(work, out)
    assert len(logs) == 1 and logs[0].startswith("group_unlearn_digits_smallcnn"), logs
    finished = FINISHED.findall(out)
    assert finished.count("unlearn") == 1 and "train_reference" not in finished, finished
    assert "wildcards: dataset=digits, model=smallcnn, method=ga" in out
    assert gone.exists()
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert len(pd.read_csv(work / "results/metrics.csv")) == 4
