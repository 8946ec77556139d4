"""Shared fixtures: tiny splits, a copy of the workflow in a temporary folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from unlearnbench import data
from unlearnbench.batches import Split

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def tiny_split(n: int, seed: int, num_classes: int = 10) -> Split:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    return Split(images, labels, data.get_spec("digits"))


@pytest.fixture
def tiny_splits() -> dict[str, Split]:
    return {"retain": tiny_split(24, 1), "forget": tiny_split(12, 2), "val": tiny_split(12, 3),
            "test": tiny_split(12, 4)}


def copy_workflow(dest: Path) -> Path:
    """A runnable copy of the workflow (Snakefile, rules, scripts, schema, profiles)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, dest / name)
    for name in ("workflow", "profiles", "envs"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def write_config(path: Path, **config) -> Path:
    """A config file; without `scenarios`, the random scenario only (config.yaml's other
    scenarios would add their jobs to every tiny workflow merged over it)."""
    config = {"scenarios": [{"kind": "random"}], **config}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(SNAKEMAKE + list(args), cwd=workdir, capture_output=True, text=True, timeout=timeout,
                          env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-6000:]}")
    return proc
