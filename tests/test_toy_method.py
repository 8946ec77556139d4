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


def test_a_toy_method_module_leaves_method_config_and_report_tests_green(tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".git", "results", "logs", ".snakemake", "__pycache__",
                                                              ".pytest_cache"))
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
