"""README's examples, run as written on a fresh clone whose config.yaml is a tiny config
shaped like the shipped one (search on, U-LiRA on with its own methods): running a
subset, adding a method, and one figure from a copied metrics.csv."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, SNAKEMAKE

pytestmark = pytest.mark.workflow

README = (REPO / "README.md").read_text()
TINY_DEFAULT = {
    "datasets": ["digits"],
    "models": ["smallcnn"],
    "seeds": [0],
    "methods": ["ft", "ct", "msg"],
    "training": {"digits": {"epochs": 2}},
    "search": {"trials": 1, "seeds": [0], "on_no_complete_trial": "defaults"},
    "device": "cpu",
    "ulira": {"enabled": True, "epochs": 1, "splits": 2, "forget_sets": 1, "methods": ["ft", "ct", "msg"]},
}
NEW_METHOD = "myft"
NEW_LABEL = "My_FT & 2%"  # a label with LaTeX's special characters, through every table


def fresh_clone(dest: Path) -> Path:
    """The repository's files as a clone of them would hold (tracked and new, not ignored),
    with the tiny config as config.yaml."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    (dest / "config.yaml").write_text(yaml.safe_dump(TINY_DEFAULT, sort_keys=False))
    return dest


def run(clone: Path, command: str, check: bool = True) -> subprocess.CompletedProcess:
    """A README command line (`snakemake ...`) in the clone, with the clone's own package."""
    args = shlex.split(command)
    assert args[0] == "snakemake", command
    env = {**os.environ, "PYTHONPATH": str(clone / "src"), "PYTHONHASHSEED": "0"}
    proc = subprocess.run(SNAKEMAKE + args[1:], cwd=clone, capture_output=True, text=True, timeout=1200, env=env)
    if check:
        assert proc.returncode == 0, f"{command}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def rules_run(proc: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"^(?:local)?rule (\w+):", proc.stdout + proc.stderr, flags=re.M))


def readme_subset_example() -> tuple[str, str]:
    """The sub-config file and its command from README's Configuration section."""
    match = re.search(r"\n    # my\.yaml\n((?:    .+\n)+)\n    (snakemake --configfile my\.yaml)\n", README)
    assert match, "README's sub-config example (# my.yaml, then its command) not found"
    return "".join(line[4:] + "\n" for line in match[1].splitlines()), match[2]


def readme_figure_commands() -> list[str]:
    section = README.split("## Reproducing one figure", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip().split("  #")[0].strip() for line in section.splitlines() if line.startswith("    snakemake")]
    return [line for line in lines if "--report" not in line]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    return fresh_clone(tmp_path_factory.mktemp("clone"))


def test_running_a_subset(clone):
    text, command = readme_subset_example()
    (clone / "my.yaml").write_text(text)
    sub = yaml.safe_load(text)
    run(clone, command)
    metrics = pd.read_csv(clone / "results/metrics.csv")
    assert set(metrics["method"]) == {"original", "retrained", *sub["methods"]}
    assert (clone / "results/tables/hyperparameters.csv").exists()  # the tiny default's search ran
    assert not (clone / "results/ulira").exists()  # switched off
    # the switched-off section is checked once one of its targets is asked for
    proc = run(clone, f"{command} -n table_ulira", check=False)
    assert proc.returncode != 0 and "no method 'ct', method 'msg'" in proc.stdout + proc.stderr


def test_adding_a_method(clone):
    """docs/extending.md's method recipe: one module beside ft.py; config, search, tables and figures pick it
    up by its NAME."""
    ft = (clone / "src/unlearnbench/methods/ft.py").read_text()
    module = re.sub(r'^LABEL = .*$', f"LABEL = {NEW_LABEL!r}", re.sub(r'^NAME = .*$', f'NAME = "{NEW_METHOD}"', ft,
                                                                       flags=re.M), flags=re.M)
    (clone / f"src/unlearnbench/methods/{NEW_METHOD}.py").write_text(module)
    (clone / "my.yaml").write_text(yaml.safe_dump({"methods": ["ft", "ga", NEW_METHOD], "ulira": {"enabled": False}}))
    proc = run(clone, "snakemake --configfile my.yaml")
    assert {"search_unlearn", "metrics", "table_main"} <= rules_run(proc)  # search.one_job: a small search
    # only the new method's job: the methods of the subset run are not rerun
    assert re.findall(r"wildcards: .*method=(\w+)", proc.stdout + proc.stderr) == [NEW_METHOD], proc.stdout[-3000:]
    assert "train_reference" not in rules_run(proc)  # the references of the subset run are reused
    metrics = pd.read_csv(clone / "results/metrics.csv")
    assert (metrics["method"] == NEW_METHOD).sum() == 1
    assert (clone / f"results/digits/smallcnn/search/{NEW_METHOD}/best.json").exists()
    assert NEW_LABEL in (clone / "results/tables/main.md").read_text()
    assert r"My\_FT \& 2\%" in (clone / "results/tables/main.tex").read_text()
    assert NEW_METHOD in (clone / "results/tables/hyperparameters.csv").read_text()


def test_one_figure_from_a_copied_metrics_csv(clone, tmp_path):
    """README: copy a metrics.csv into a checkout without per-model results, touch it,
    then each figure and table command runs report rules only."""
    if not (clone / "results/metrics.csv").exists():
        pytest.skip("needs test_running_a_subset's metrics.csv")
    other = fresh_clone(tmp_path / "other")
    (other / "results").mkdir()
    shutil.copy(clone / "results/metrics.csv", other / "results/metrics.csv")
    os.utime(other / "results/metrics.csv")  # README: touch results/metrics.csv
    commands = readme_figure_commands()
    assert commands[0].startswith("snakemake figures/rte.png") and len(commands) >= 3
    dry = run(other, "snakemake -n figures/rte.png")
    assert rules_run(dry) == {"table_rte", "figure_rte"}, dry.stdout[-2000:]
    for command in commands:
        proc = run(other, command)
        assert rules_run(proc) <= {"table_main", "table_rte", "table_rankings", "table_critical_difference",
                                   "figure_rte", "figure_retention", "figure_seed_spread", "figure_rank_heatmap",
                                   "figure_critical_difference"}, (command, rules_run(proc))
    assert (other / "figures/rte.png").stat().st_size > 0 and (other / "results/tables/main.tex").exists()
    assert not (other / "results/digits").exists()  # nothing was trained
