"""The conda environment mirrors pyproject's dependencies; every rule names it."""

from __future__ import annotations

import re
import tomllib

import yaml

from conftest import REPO


def _pip_requirements(env: dict) -> list[str]:
    for dep in env["dependencies"]:
        if isinstance(dep, dict) and "pip" in dep:
            return [r for r in dep["pip"] if not r.startswith("-e")]
    return []


def test_conda_env_mirrors_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "envs/unlearnbench.yaml").read_text())
    assert sorted(_pip_requirements(env)) == sorted(project["dependencies"])


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
    import subprocess
    import sys

    text = (REPO / "workflow/scripts" / script).read_text()
    imports = "\n".join(line for line in text.splitlines() if line.startswith(("from ", "import ")))
    probe = imports + "\nimport sys\nprint(' '.join(m for m in ('torch', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_selection_jobs_start_without_torch():
    """select_best runs once per (dataset, model, method): its script's imports must not
    pull in torch or scikit-learn (~3 s of start-up per job on a laptop)."""
    assert _modules_after_imports("select_best.py") == []


def test_table_and_figure_jobs_start_without_scikit_learn():
    """They read the method registry (torch) for labels, but never need the MIA's
    scikit-learn (about 1 s of start-up each)."""
    for script in ("table_main.py", "figure_retention.py", "ulira_table.py"):
        assert "sklearn" not in _modules_after_imports(script), script
