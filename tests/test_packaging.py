"""Packaging: the conda environment (its packages, its post-deploy install, a conda dry
run), every rule naming it, and what each process imports (the workflow's parse no torch)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SNAKEMAKE, copy_workflow


# pyproject name -> conda-forge/bioconda name, where they differ
CONDA_NAMES = {"torch": "pytorch", "matplotlib": "matplotlib-base", "snakemake": "snakemake-minimal"}
BUILD_TOOLS = {"pip", "setuptools"}  # for the post-deploy install of the project itself
ENV_FILE = REPO / "envs/unlearnbench.yaml"
POST_DEPLOY = REPO / "envs/unlearnbench.post-deploy.sh"  # the name Snakemake looks for


def _spec(requirement: str) -> tuple[str, str]:
    name, bound = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", requirement).groups()
    return name, bound.replace(" ", "")


def test_conda_env_mirrors_pyproject():
    """Every pyproject dependency as a conda package with the same bound, python as
    requires-python, nothing else but the tools the post-deploy install needs."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    project = pyproject["project"]
    env = yaml.safe_load(ENV_FILE.read_text())
    assert all(isinstance(dep, str) for dep in env["dependencies"]), "no pip section: conda packages only"
    specs = dict(_spec(dep) for dep in env["dependencies"])
    assert specs.pop("python") == project["requires-python"]
    assert {name: specs.pop(name) for name in BUILD_TOOLS} == {
        "pip": "", "setuptools": next(r for r in pyproject["build-system"]["requires"] if "setuptools" in r)[10:]}
    wanted = {CONDA_NAMES.get(name, name): bound for name, bound in map(_spec, project["dependencies"])}
    assert specs == wanted
    assert env["channels"] == ["conda-forge", "bioconda"]


def test_conda_env_names_no_path():
    """Snakemake creates the environment from a copy of the file elsewhere: a path in it
    would resolve from there."""
    text = ENV_FILE.read_text()
    body = "\n".join(line.split("#")[0] for line in text.splitlines())
    assert "/" not in body and "-e " not in body and "pip:" not in body


def test_post_deploy_installs_this_checkout_from_wherever_snakemake_copies_it(tmp_path):
    """Run the script as Snakemake does: a copy under .snakemake/conda/, in the new
    environment (here a bare venv that sees this one's packages), from another folder,
    with UNLEARNBENCH_ROOT as the workflow exports it; the environment then imports the
    project from the checkout."""
    checkout = copy_workflow(tmp_path / "checkout")
    shutil.copy(REPO / "pyproject.toml", checkout / "pyproject.toml")
    shutil.copy(REPO / "README.md", checkout / "README.md")
    shutil.copytree(REPO / "src", checkout / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    env_python = env / "bin" / "python"
    purelib = subprocess.run([str(env_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # pip, setuptools
    copy = tmp_path / "work/.snakemake/conda/0123abcd.post-deploy.sh"
    copy.parent.mkdir(parents=True)
    shutil.copy(POST_DEPLOY, copy)
    environ = {**os.environ, "PATH": f"{env / 'bin'}:{os.environ['PATH']}", "UNLEARNBENCH_ROOT": str(checkout)}
    environ.pop("PYTHONPATH", None)
    run = subprocess.run(["bash", str(copy)], cwd=tmp_path / "work", env=environ, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    where = subprocess.run([str(env_python), "-c", "import unlearnbench; print(unlearnbench.__file__)"], env=environ,
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where) == checkout / "src/unlearnbench/__init__.py"
    environ.pop("UNLEARNBENCH_ROOT")
    run = subprocess.run(["bash", str(copy)], cwd=tmp_path / "work", env=environ, capture_output=True, text=True)
    assert run.returncode != 0 and "UNLEARNBENCH_ROOT" in run.stderr


# `snakemake --sdm conda -n` asks conda these three things; no conda can be installed here
CONDA_STUB = """#!/bin/sh
case "$*" in
  "info --json") echo '{"conda_prefix": "/opt/conda", "platform": "linux-64", "conda_version": "25.1.1"}' ;;
  "--version") echo "conda 25.1.1" ;;
  "config --get channel_priority --json") echo '{"get": {"channel_priority": "strict"}}' ;;
  *) echo "conda stub: no $*" >&2; exit 1 ;;
esac
"""


def test_conda_dry_run_builds_the_dag(tmp_path):
    work = copy_workflow(tmp_path / "work")
    stub = tmp_path / "bin/conda"
    stub.parent.mkdir()
    stub.write_text(CONDA_STUB)
    stub.chmod(0o755)
    environ = {**os.environ, "PATH": f"{stub.parent}:{os.environ['PATH']}"}
    run = subprocess.run(SNAKEMAKE + ["--sdm", "conda", "-n"], cwd=work, env=environ, capture_output=True, text=True,
                         timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "Conda environment envs/unlearnbench.yaml will be created" in out and "\ntotal " in out


# Run Snakemake's command line in-process and say, at exit, what the parse imported.
PARSE_PROBE = """
import atexit, os, sys
def report():
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "timm", "sklearn")
                   or m.startswith("unlearnbench.methods."))
    print("IMPORTED=" + ",".join(heavy))
    print("ROOT=" + os.environ.get("UNLEARNBENCH_ROOT", ""))
atexit.register(report)
from snakemake.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("args", [[], ["--configfile", "configs/paper.yaml"]], ids=["default", "paper"])
def test_parsing_the_workflow_imports_no_torch(tmp_path, args):
    """A dry run (and so --unlock, --report, the re-parse in every cluster job) loads
    neither torch nor any method module; it exports the checkout for the conda env."""
    work = copy_workflow(tmp_path / "work")
    shutil.copytree(REPO / "configs", work / "configs")
    run = subprocess.run([sys.executable, "-c", PARSE_PROBE, "-n", *args], cwd=work, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0 and "\ntotal " in run.stdout, (run.stdout + run.stderr)[-4000:]
    assert "IMPORTED=\n" in run.stdout, run.stdout[-2000:]
    assert f"ROOT={work.resolve()}\n" in run.stdout


def test_every_rule_names_the_conda_env_and_a_log():
    for smk in sorted((REPO / "workflow/rules").glob("*.smk")):
        text = smk.read_text()
        rules = re.split(r"^rule ", text, flags=re.M)[1:]
        for body in rules:
            name = body.split(":", 1)[0]
            assert "conda:" in body and "ENV" in body, f"rule {name} in {smk.name} lacks conda: ENV"
            assert "log:" in body, f"rule {name} in {smk.name} lacks log:"


def _modules_after_imports(script: str) -> list[str]:
    """Which of torch and scikit-learn a workflow script's imports load, in a fresh interpreter."""
    text = (REPO / "workflow/scripts" / script).read_text()
    imports = "\n".join(line for line in text.splitlines() if line.startswith(("from ", "import ")))
    probe = imports + "\nimport sys\nprint(' '.join(m for m in ('torch', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_selection_and_attack_jobs_start_without_torch():
    """select_best runs once per (dataset, model, method), the U-LiRA attack once per
    kind of shadow model: their scripts' imports must not pull in torch or scikit-learn
    (~3 s of start-up per job on a laptop)."""
    assert _modules_after_imports("select_best.py") == []
    assert _modules_after_imports("ulira_attack.py") == []


def test_table_and_figure_jobs_start_without_scikit_learn():
    """They never need the MIA's scikit-learn (about 1 s of start-up each)."""
    for script in ("table_main.py", "figure_retention.py", "table_ulira.py"):
        assert "sklearn" not in _modules_after_imports(script), script


def test_table_and_figure_jobs_start_without_torch():
    """They read method labels from the registry, which imports no method module, and the
    U-LiRA files module imports torch only to read or write checkpoints."""
    scripts = sorted(p.name for p in (REPO / "workflow/scripts").glob("*.py")
                     if p.name.startswith(("table_", "figure_")) or p.name == "metrics.py")
    assert len(scripts) >= 5
    for script in scripts:
        assert _modules_after_imports(script) == [], script
