"""Warm start of a local run's jobs (docs/performance.md#warm-start): one server process
per run imports torch and the other libraries the jobs use once, and forks a child per
job, so that a job no longer spends ~4 s of CPU importing them.

A job script calls `delegate()` first. In a local run whose Snakemake started the server
(`start`, from the workflow's onstart), the script's process sends the server its own
file (the script Snakemake wrote, its preamble included), working folder, environment
and standard streams, then waits; a child forked from the server runs that same file
with them, so the job does what it would do in a fresh interpreter. A job started while
the server warms up (the run's first ones) waits for it, so that no job pays the imports
twice. Without a server (dry runs, cluster jobs, runs on a GPU, a server gone or not ready
within READY_WAIT), `delegate` returns and the script runs in its own process, as before.

Faults: the script's process forwards SIGINT, SIGTERM and SIGHUP to its child and ends
as the child ended (its exit code, or the same signal); when the script's process dies
(SIGKILL, a cancelled job) the server kills its child; the server stops taking jobs when
the Snakemake process that started it is gone, and exits once its children are done.
multiprocessing's forkserver preloads modules the same way but only serves the process
that started it, not separate job processes: hence this module.

Only on CPU: a process that has used CUDA cannot fork children that use it, and a GPU
job's start-up is small beside its work.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ENV = "UNLEARNBENCH_WARM_SOCKET"
"""The server's socket, set by `start` in the Snakemake process for the jobs it starts."""

PID_ENV = "UNLEARNBENCH_WARM_PID"
"""The server's process id, set beside ENV: a job waits for the socket while it lives."""

READY_WAIT = 60.0
"""Seconds a job waits for a server that is still warming up (about 6 s on 2 cores)
before it runs in its own process."""

PRELOAD = (
    "numpy", "threadpoolctl", "pandas", "scipy.stats", "sklearn.datasets", "sklearn.linear_model", "sklearn.model_selection",
    "torch", "torch._dynamo", "torchvision", "torchvision.models", "safetensors.torch", "optuna", "tqdm", "timm",
    "matplotlib.pyplot", "seaborn",
    "unlearnbench.data", "unlearnbench.jobs.context", "unlearnbench.jobs.method", "unlearnbench.jobs.scenario",
    "unlearnbench.jobs.ulira", "unlearnbench.jobs.ulira_attack", "unlearnbench.methods", "unlearnbench.report.tables",
    "unlearnbench.report.figures",
)
"""Imported by the server before it forks. torch._dynamo: torch.optim imports it when the
first optimiser is built (~1.5 s); the others are what jobs import at their top."""

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Read by torch, OpenBLAS (scikit-learn's and scipy's) and MKL when they load; Snakemake
sets them to a job's threads."""

_HEADER = struct.Struct("!Q")
_in_child = False


# -- the job script's side -------------------------------------------------------------

def delegate() -> None:
    """Run this job script in a child of the run's warm-start server and exit as it
    exits; return (to run here) when there is no server to take it."""
    path = os.environ.get(ENV)
    if _in_child or not path or "SLURM_JOB_ID" in os.environ:
        return
    if not _ready(path):
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        body = json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
        socket.send_fds(sock, [_HEADER.pack(len(body))], [0, 1, 2])
        sock.sendall(body)
        pid = _read_int(sock)
    except OSError:  # the server closed before starting the job: run here
        sock.close()
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: os.kill(pid, signum))
    try:
        status = _read_int(sock)
    except OSError:
        sys.exit(f"the warm-start server ended while job process {pid} ran; rerun to redo the job")
    if os.WIFSIGNALED(status):  # end as the child ended
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    sys.exit(os.waitstatus_to_exitcode(status))


def _ready(path: str) -> bool:
    """Whether the server's socket is there, waiting up to READY_WAIT while the server
    that `start` named (PID_ENV) is alive and warming up. A job that ran in its own
    process instead would import the libraries again, on a core the server's warm-up or
    another job needs (docs/performance.md#target, run 14)."""
    pid = os.environ.get(PID_ENV, "")
    deadline = time.monotonic() + READY_WAIT
    while not os.path.exists(path):
        if not pid.isdigit() or time.monotonic() > deadline or not _alive(int(pid)):
            return False
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    """Whether process `pid` runs: not gone, not another user's (its id reused), and not a
    zombie (a server that ended stays one until Snakemake, its parent, reaps it)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (macOS): kill's answer stands
        return True
    return state not in ("Z", "X")


def _read_int(sock: socket.socket) -> int:
    return _HEADER.unpack(_recv_exactly(sock, _HEADER.size))[0]


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed before the whole message")
        data += chunk
    return data


# -- the Snakemake process's side --------------------------------------------------------

def wanted(device: str) -> bool:
    """Whether a local run with config `device` runs its jobs on CPU, decided without
    touching CUDA in this process: "cpu", or "auto" on a machine with no NVIDIA device."""
    return device == "cpu" or (device == "auto" and not Path("/dev/nvidiactl").exists())


def start(log_path: str | Path) -> subprocess.Popen:
    """Start the server for this run (its output goes to `log_path`) and point the jobs
    that this process starts at it. The first jobs wait for it to warm up (`_ready`)."""
    folder = tempfile.mkdtemp(prefix="unlearnbench-warm-")
    path = os.path.join(folder, "socket")
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    # One thread in the server: the BLAS and OpenMP libraries it loads start no thread
    # before it forks (each child then takes its job's threads, _job_threads).
    env = {**os.environ, **{name: "1" for name in THREAD_VARIABLES}}
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "unlearnbench.warm_start", path, str(os.getpid())],
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
    os.environ[ENV] = path
    os.environ[PID_ENV] = str(server.pid)
    return server


def stop(server: subprocess.Popen | None) -> None:
    """Stop taking jobs and wait for the server (it ends its running children first)."""
    os.environ.pop(ENV, None)
    os.environ.pop(PID_ENV, None)
    if server is None or server.poll() is not None:
        return
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


# -- the server --------------------------------------------------------------------------

def serve(path: str, parent: int) -> None:
    """Preload, then fork a child per job request on the socket `path` until process
    `parent` (the run's Snakemake) is gone or asks to stop, then wait for the children."""
    import importlib

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the jobs themselves
    stopping = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    began = time.perf_counter()
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError as err:  # an optional library (timm, seaborn): its jobs import it themselves
            print(f"not preloaded: {name} ({err})", flush=True)
    from . import data

    data.digits_arrays()  # the embedded dataset, parsed once
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    print(f"ready in {time.perf_counter() - began:.1f} s: {path}", flush=True)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    children: dict[int, tuple[socket.socket, str, float]] = {}  # pid: (its connection, script, start)
    accepting, served = True, 0
    try:
        while accepting or children:
            if accepting and (stopping or os.getppid() != parent):
                accepting = False
                sel.unregister(listener)
                listener.close()
                for pid in children if stopping else ():
                    _kill(pid, signal.SIGTERM)
            for key, _ in sel.select(timeout=0.2):
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    pid, script = _fork_job(conn, listener, children)
                    if pid:
                        children[pid] = (conn, script, time.perf_counter())
                        sel.register(conn, selectors.EVENT_READ, pid)
                        served += 1
                elif not _still_there(key.fileobj):  # the job script's process is gone: so goes its job
                    sel.unregister(key.fileobj)
                    _kill(key.data, signal.SIGKILL)
            while children:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
                if not pid:
                    break
                conn, script, started = children.pop(pid)
                # each job's own cost, for docs/performance.md's stage table
                print(f"job {script}: {usage.ru_utime + usage.ru_stime:.2f} s CPU, "
                      f"{time.perf_counter() - started:.2f} s wall, exit status {status}", flush=True)
                if conn.fileno() in sel.get_map():  # its script's process still waits for the status
                    sel.unregister(conn)
                    try:
                        conn.sendall(_HEADER.pack(status))
                    except OSError:
                        pass
                conn.close()
    finally:
        if accepting:
            listener.close()
        Path(path).unlink(missing_ok=True)
        Path(path).parent.rmdir()
    print(f"served {served} jobs", flush=True)


def _still_there(conn: socket.socket) -> bool:
    """Whether the job script's process at the other end is alive (it sends nothing: a
    readable connection is a closed one)."""
    try:
        return bool(conn.recv(1))
    except OSError:
        return False


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _fork_job(conn: socket.socket, listener: socket.socket, children: dict) -> tuple[int, str]:
    """Read one request and fork its child: (pid, the script's name); pid 0 when the
    request is broken (its job script then runs the job itself)."""
    try:
        header, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
        if len(header) != _HEADER.size or len(fds) != 3:
            raise ConnectionError("incomplete request")
        request = json.loads(_recv_exactly(conn, _HEADER.unpack(header)[0]))
    except (OSError, ValueError) as err:
        print(f"refused a request: {err}", flush=True)
        conn.close()
        return 0, ""
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        listener.close()
        for other, _, _ in children.values():
            other.close()
        conn.close()
        _run_job(request, fds)  # never returns
    for fd in fds:
        os.close(fd)
    try:
        conn.sendall(_HEADER.pack(pid))
    except OSError:
        pass  # its script's process is gone: the loop sees the connection closed and kills the job
    # Snakemake names a rule's script copy tmpXXXXXXXX.<script>.py
    return pid, Path(request["argv"][0]).name.split(".", 1)[-1].removesuffix(".py")


def _run_job(request: dict, fds: list[int]) -> None:
    """In the forked child: become the job script's process (its streams, folder,
    environment, arguments and fresh random states), run its file, exit with its code."""
    global _in_child
    _in_child = True
    code = 1
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
        _job_threads()
        _fresh_random_states()
        import runpy

        runpy.run_path(sys.argv[0], run_name="__main__")
        code = 0
    except SystemExit as end:  # as the interpreter treats it: None is 0, a message is printed and is 1
        if end.code is None or isinstance(end.code, int):
            code = end.code or 0
        else:
            print(end.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _job_threads() -> None:
    """The thread counts a new interpreter would take from the job's environment (the
    libraries were loaded in the server, with one thread): torch's, and the BLAS and
    OpenMP pools' (threadpoolctl; scikit-learn's logistic regression is 4x slower with
    two BLAS threads on two busy cores)."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = next((int(os.environ[v]) for v in THREAD_VARIABLES if os.environ.get(v, "").isdigit()), None)
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    threadpool_limits(threads)


def _fresh_random_states() -> None:
    """What a new interpreter starts with: torch's fixed default seed, numpy's and
    Python's global generators seeded from the system."""
    import random

    import numpy as np
    import torch

    random.seed()
    np.random.seed()
    torch.manual_seed(torch.Generator().initial_seed())


if __name__ == "__main__":
    from unlearnbench.warm_start import serve as _serve  # the module, not __main__: its flag is the jobs'

    _serve(sys.argv[1], int(sys.argv[2]))
