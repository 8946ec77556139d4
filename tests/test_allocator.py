"""The jobs' glibc malloc tunables (unlearnbench/allocator.py): added to the user's
GLIBC_TUNABLES, never over them. That the workflow's jobs run with them is checked on a
real run (tests/test_report.py, results/provenance.json); what they buy is measured by
benchmarks/allocator.py."""

from __future__ import annotations

import os
import subprocess
import sys

from unlearnbench import allocator

THRESHOLD = "glibc.malloc.mmap_threshold"


def pairs(value: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in value.split(":"))


def test_without_a_user_setting_the_jobs_get_every_tunable():
    assert pairs(allocator.tunables(None)) == allocator.TUNABLES
    assert pairs(allocator.tunables("")) == allocator.TUNABLES


def test_the_users_tunables_are_kept_and_win():
    mine = f"glibc.malloc.arena_max=2:{THRESHOLD}=65536"
    merged = allocator.tunables(mine)
    assert merged.startswith(mine + ":")
    got = pairs(merged)
    assert got["glibc.malloc.arena_max"] == "2" and got[THRESHOLD] == "65536"
    assert got["glibc.malloc.trim_threshold"] == allocator.TUNABLES["glibc.malloc.trim_threshold"]
    assert allocator.tunables(merged) == merged  # applying it twice (a re-parse) changes nothing


def test_a_process_started_with_them_runs_torch():
    """glibc accepts the values (an out-of-range tunable is ignored, never fatal, but a
    process must still start and compute with them)."""
    env = {**os.environ, allocator.VARIABLE: allocator.tunables(None)}
    code = "import torch; a = torch.ones(512, 512, 3, 3); print(float((a * a).sum()))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) == 512 * 512 * 9
