"""The warm-start server (unlearnbench/warm_start.py): a job run in a forked child ends as
it would in its own process (exit code, traceback, signals, streams, folder, environment),
dies with its script's process, and a real run writes the same files with and without it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import copy_workflow, snakemake, write_config
from unlearnbench import warm_start

CLIENT = """\
import os, sys, time
from unlearnbench import warm_start
warm_start.delegate()
print("pid", os.getpid(), "cwd", os.getcwd(), "env", os.environ.get("PROBE"), "argv", sys.argv[1:], flush=True)
mode = sys.argv[1]
if mode == "fail":
    raise ValueError("the job's own error")
if mode == "exit":
    sys.exit(3)
if mode == "threads":
    import torch
    from threadpoolctl import threadpool_info
    print("threads", torch.get_num_threads(), sorted({p["num_threads"] for p in threadpool_info()}), flush=True)
if mode == "sleep":
    open(sys.argv[2], "w").write(str(os.getpid()))
    time.sleep(60)
"""


@pytest.fixture
def server(tmp_path):
    """A server started as the workflow's onstart does, from this process."""
    proc = warm_start.start(tmp_path / "warm.log")
    path = os.environ[warm_start.ENV]
    deadline = time.time() + 60
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.1)
    assert os.path.exists(path), (tmp_path / "warm.log").read_text()
    yield proc
    warm_start.stop(proc)
    assert proc.returncode == 0, (tmp_path / "warm.log").read_text()


def client(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    script = tmp_path / "job.py"
    script.write_text(CLIENT)
    return subprocess.Popen([sys.executable, str(script), *args], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env or {**os.environ, "PROBE": "from the client"})


def test_a_job_runs_in_a_child_of_the_server_with_the_clients_folder_environment_and_streams(tmp_path, server):
    proc = client(tmp_path, "ok")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    pid = int(out.split()[1])
    assert pid != proc.pid  # it ran elsewhere: in a child of the server
    assert f"cwd {tmp_path} env from the client argv ['ok']" in out


@pytest.mark.parametrize("threads", [1, 2])
def test_a_job_takes_the_threads_its_environment_asks_for(tmp_path, server, threads):
    """As a new interpreter would (Snakemake sets these variables to a rule's threads),
    though the server loaded torch and the BLAS libraries with one thread."""
    env = {name: str(threads) for name in warm_start.THREAD_VARIABLES}
    proc = client(tmp_path, "threads", env={**os.environ, "PROBE": "", **env})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"threads {threads} [{threads}]" in out


def test_a_failing_job_exits_1_with_its_traceback_and_an_exit_code_is_kept(tmp_path, server):
    proc = client(tmp_path, "fail")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.rstrip().endswith("ValueError: the job's own error")
    proc = client(tmp_path, "exit")
    proc.communicate(timeout=60)
    assert proc.returncode == 3


def _child_pid(tmp_path: Path, proc: subprocess.Popen) -> int:
    marker = tmp_path / "child.pid"
    deadline = time.time() + 60
    while not (marker.exists() and marker.read_text()) and time.time() < deadline:
        time.sleep(0.05)
    return int(marker.read_text())


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_sigterm_reaches_the_job_and_the_client_ends_by_it(tmp_path, server):
    proc = client(tmp_path, "sleep", str(tmp_path / "child.pid"))
    child = _child_pid(tmp_path, proc)
    assert child != proc.pid
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM
    assert _gone(child)


def test_a_killed_client_takes_its_job_with_it(tmp_path, server):
    proc = client(tmp_path, "sleep", str(tmp_path / "child.pid"))
    child = _child_pid(tmp_path, proc)
    proc.kill()  # SIGKILL: nothing to forward; the server sees the connection close
    proc.communicate(timeout=30)
    assert _gone(child)


def test_without_a_server_the_job_runs_in_its_own_process(tmp_path, monkeypatch):
    monkeypatch.setenv(warm_start.ENV, str(tmp_path / "no-such-socket"))
    proc = client(tmp_path, "ok")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and int(out.split()[1]) == proc.pid


def test_a_job_started_while_the_server_warms_up_waits_for_it(tmp_path):
    proc = warm_start.start(tmp_path / "warm.log")
    try:
        assert not os.path.exists(os.environ[warm_start.ENV])  # still importing torch
        job = client(tmp_path, "ok")
        out, err = job.communicate(timeout=120)
        assert job.returncode == 0 and int(out.split()[1]) != job.pid, out + err  # run by a child of the server
    finally:
        warm_start.stop(proc)
    assert "served 1 jobs" in (tmp_path / "warm.log").read_text()


def test_a_job_does_not_wait_for_a_server_that_ended_while_warming_up(tmp_path, monkeypatch):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])  # left unreaped: a zombie, as a crashed server is
    time.sleep(1)
    monkeypatch.setenv(warm_start.ENV, str(tmp_path / "no-such-socket"))
    monkeypatch.setenv(warm_start.PID_ENV, str(ended.pid))
    began = time.monotonic()
    proc = client(tmp_path, "ok")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and int(out.split()[1]) == proc.pid
    assert time.monotonic() - began < warm_start.READY_WAIT  # ran at once, not after the wait
    ended.wait()


def test_a_cluster_job_runs_in_its_own_process_beside_a_server(tmp_path, server, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "1")
    proc = client(tmp_path, "ok")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and int(out.split()[1]) == proc.pid


def test_the_server_stops_when_the_process_that_started_it_is_gone(tmp_path):
    starter = subprocess.run(
        [sys.executable, "-c", "from unlearnbench import warm_start; import sys; "
         "p = warm_start.start(sys.argv[1]); print(p.pid)", str(tmp_path / "warm.log")],
        capture_output=True, text=True, check=True)
    pid = int(starter.stdout)
    assert _gone(pid, within=60), (tmp_path / "warm.log").read_text()


@pytest.mark.workflow
def test_a_run_writes_the_same_files_with_and_without_the_warm_start(tmp_path):
    config = dict(datasets=["digits"], models=["smallcnn"], seeds=[0], methods=["ft", "scrub"], device="cpu",
                  training={"digits": {"epochs": 2, "batch_size": 128, "image_size": 16}},
                  search={"trials": 2, "seeds": [0]}, ulira={"enabled": False})
    runs = {}
    for warm in (True, False):
        work = copy_workflow(tmp_path / f"warm_{warm}")
        write_config(work / "tiny.yaml", warm_start=warm, **config)
        snakemake(work, "results/metrics.csv", "results/tables/main.csv", "--cores", "2",
                  "--configfile", "tiny.yaml")
        runs[warm] = work
    log = (runs[True] / "logs/warm_start.log").read_text()
    assert "served" in log and "served 0 jobs" not in log, log
    assert not (runs[False] / "logs/warm_start.log").exists()
    a, b = (pd.read_csv(w / "results/metrics.csv").drop(columns="seconds") for w in (runs[True], runs[False]))
    pd.testing.assert_frame_equal(a, b)
