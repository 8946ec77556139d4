"""`snakemake --unlock` beside a live run: Snakemake's lock files (.snakemake/locks/)
hold no process id, so --unlock removes the lock of a run that is still working, and a
second run then deletes that run's outputs in progress. The Snakefile calls
`refuse_unlock_beside_a_live_run` while Snakemake parses it, before --unlock removes
anything: it fails when another process of a Snakemake run (Snakemake itself, or one of
its jobs) works in the same folder. After a kill none is left, so README's
`snakemake --unlock && snakemake` stays the one command that resumes.

Linux only (/proc); elsewhere psutil when installed, else the check is skipped with a
warning."""

from __future__ import annotations

import os
import sys
from pathlib import Path


class LiveRunError(RuntimeError):
    """Another Snakemake run works in this folder."""


def _processes():
    """(pid, cwd, argv) of every process this user may inspect."""
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                cwd = os.readlink(entry / "cwd")
            except OSError:  # gone, or another user's
                continue
            yield int(entry.name), cwd, [a.decode(errors="replace") for a in argv if a]
        return
    try:
        import psutil
    except ImportError:
        print("WARNING: cannot list processes (no /proc, no psutil): --unlock does not check for a live run",
              file=sys.stderr)
        return
    for p in psutil.process_iter(["pid", "cwd", "cmdline"]):
        if p.info["cwd"] and p.info["cmdline"]:
            yield p.info["pid"], p.info["cwd"], p.info["cmdline"]


def _ancestors(pid: int) -> set[int]:
    """`pid` and its parents (the shell of `snakemake --unlock && snakemake`)."""
    found = {pid}
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            try:
                import psutil

                pid = psutil.Process(pid).ppid()
            except Exception:
                break
        found.add(pid)
    return found


def is_snakemake(argv: list[str]) -> bool:
    """A Snakemake process or one of its jobs: `snakemake` or `python -m snakemake` (the
    main process, a cluster or local job), or a script run from .snakemake/scripts/."""
    return any(a == "snakemake" or Path(a).name == "snakemake" or ".snakemake/scripts/" in a for a in argv)


def live_runs(folder, me: int | None = None) -> list[tuple[int, str]]:
    """(pid, command line) of the Snakemake processes working in `folder`, other than
    process `me` (default: this one) and its parents."""
    folder = os.path.realpath(folder)
    mine = _ancestors(os.getpid() if me is None else me)
    return [(pid, " ".join(argv)) for pid, cwd, argv in _processes()
            if pid not in mine and os.path.realpath(cwd) == folder and is_snakemake(argv)]


def refuse_unlock_beside_a_live_run(folder, argv=None) -> None:
    """When this process is `snakemake --unlock` (per `argv`, default sys.argv), raise
    LiveRunError if another Snakemake run works in `folder`."""
    argv = sys.argv if argv is None else argv
    if "--unlock" not in argv:
        return
    others = live_runs(folder)
    if others:
        shown = "; ".join(f"pid {pid}: {cmd[:120]}" for pid, cmd in others[:3])
        raise LiveRunError(
            f"not unlocking {os.path.realpath(folder)}: a Snakemake run is working in it ({shown}). Its lock "
            "protects its outputs in progress; wait for it to finish (or stop it), then run the command again.")
