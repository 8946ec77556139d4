"""results/provenance.json: what produced the results (README, "Flags").

Package versions, Python, the machine (CPU model, GPU names), the git commit and
whether the tree had uncommitted changes, and a hash of the resolved configuration.
Light on purpose (no torch import: versions come from importlib.metadata, GPU names from
nvidia-smi), so that the rule costs a fraction of a second. It describes the machine
that ran the provenance job; each row of metrics.csv records the device and precision
its own job resolved.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from . import allocator, io

PACKAGES = ("torch", "torchvision", "timm", "optuna", "scikit-learn", "snakemake", "numpy", "pandas", "scipy",
            "scikit-posthocs")


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution, None where it is not installed."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> list[str]:
    """Names of the NVIDIA GPUs nvidia-smi sees (empty without a driver)."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def _git(args, cwd) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_state(cwd=".") -> dict:
    """{"commit", "dirty"} of the repository holding `cwd`; dirty = uncommitted changes
    to tracked files. Both None outside a git repository (or without git)."""
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def config_hash(config: dict) -> str:
    """sha256 of the resolved configuration as canonical JSON (sorted keys)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def collect(config: dict, cwd=".") -> dict:
    return {
        "packages": package_versions(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "gpus": gpu_names(),
        "git": git_state(cwd),
        "config_sha256": config_hash(config),
        "config": {k: config.get(k) for k in ("device", "precision", "data_dir", "verify_checksums")},
        "executable": sys.executable,
        # how the job processes' malloc was set (unlearnbench/allocator.py): speed only
        "glibc_tunables": os.environ.get(allocator.VARIABLE),
    }


def scenario_records(split_paths) -> list[dict]:
    """Each scenario's split file: its name, kind, parameters and sizes (its `info`), path
    and sha256 (the indices, poisoned and relabelled examples are in the file)."""
    records = []
    for path in split_paths:
        info = json.loads(str(io.load_npz(path)["info"]))
        records.append({**info, "file": Path(path).as_posix(), "sha256": io.sha256(path)})
    return records


def write_provenance(config: dict, out, cwd=".", scenario_splits=()) -> dict:
    record = collect(config, cwd)
    if scenario_splits:
        record["scenarios"] = scenario_records(scenario_splits)
    io.write_json(out, record)
    print(json.dumps(record, indent=2))
    return record
