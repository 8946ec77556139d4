"""Adding a method as docs/extending.md describes keeps the suite green: a toy module, added to a
copy of the project, passes the method contract, config, claims and report tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from unlearnbench import methods

from conftest import REPO

TOY = '''"""Toy: one epoch of CE on the retain set (a test's stand-in for a new method)."""

from ._loops import fine_tune
from ._spaces import base_space

NAME = "toy"
LABEL = "Toy"
READS = ("retain",)
DEFAULTS = {"epochs": 1, "batch_size": 64, "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4}


def search_space(trial, epoch_cap: int) -> dict:
    return base_space(trial, epoch_cap)


def unlearn(model, data, hp, generator):
    return fine_tune(model, data.retain, hp, generator)
'''

# test_methods.py: the toy's own contract tests and the registry's; the other files whole
# but for the report's slowest test (every table and figure rebuilt, about 80 s).
SELECTION = ("(test_methods and (toy or registry or scenarios or unknown or only_kde)) "
             "or (not test_methods and not rebuilds_alone)")
FILES = ["tests/test_methods.py", "tests/test_config.py", "tests/test_claims.py", "tests/test_shipped_configs.py",
         "tests/test_latex.py", "tests/test_report.py"]


def copy_project(dest):
    """The project's own files: what git tracks or would track. A virtual environment, results or
    caches inside the checkout stay behind (CI's .venv alone is several GB)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True)
    if listed.returncode != 0:  # not a git checkout: everything but what .gitignore names
        shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
            ".git", ".venv", "venv", "results", "figures", "logs", "data", "build", ".snakemake", "__pycache__",
            ".pytest_cache", "*.egg-info"))
        return dest
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is listed too
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def test_a_toy_method_module_leaves_method_config_and_report_tests_green(tmp_path):
    copy = copy_project(tmp_path / "project")
    (copy / "src/unlearnbench/methods/toy.py").write_text(TOY)
    env = {**os.environ, "PYTHONPATH": str(copy / "src"), "PYTHONHASHSEED": "0"}
    check = subprocess.run([sys.executable, "-c", "from unlearnbench import methods; print(methods.names())"],
                           cwd=copy, env=env, capture_output=True, text=True)
    assert check.stdout.strip() == repr(methods.names()[:-1] + ["toy"] + methods.names()[-1:])  # before unsir
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-k", SELECTION,
                           *FILES], cwd=copy, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "[toy" in subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-k", "toy", "tests/test_methods.py"],
        cwd=copy, env=env, capture_output=True, text=True).stdout
