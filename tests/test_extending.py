"""docs/extending.md's recipes, each followed with a toy in a temporary copy of the
repository and run through one real tiny Snakemake workflow: a toy dataset, a toy model,
a toy per-model attack, a toy per-example score, a toy scenario and a toy table, all
added to one copy and built by one `snakemake` run (the U-LiRA bank on the toy dataset
and model). The method recipe's tests are tests/test_readme_examples.py::test_adding_a_method
and tests/test_toy_method.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, SNAKEMAKE, copy_workflow, write_config

pytestmark = pytest.mark.workflow

# --- the toys, as the recipes say (implement / register / configure) -----------------------

TOY_DATASET_ENTRY = '''
DATASETS["toyset"] = Dataset("toyset", 4, None, 8, 3, (0.5,) * 3, (0.25,) * 3, "none", "nothing (synthetic)",
                             400, 80, epochs=4, batch_size=64, max_search_batch=None, cost=0.01, mem_mb=1000)
'''
TOY_LOADER = '''

def load_toyset(root: Path, download: bool, size: int = 8, verify_checksums: bool = True) -> Pool:
    """4 classes of noisy 8x8 images, each class brightest in its own quadrant: 320 train, 80 test."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(400) % 4
    images = torch.randint(0, 96, (400, 3, 8, 8), generator=g, dtype=torch.uint8)
    for c in range(4):
        r, q = divmod(c, 2)
        images[labels == c, :, 4 * r:4 * r + 4, 4 * q:4 * q + 4] += 128
    return Pool(_resize(images, size), labels, n_train=320)

'''
TOY_MODEL = '''

class TinyMLP(nn.Module):
    """A one-hidden-layer MLP: one block (`layer1`) and a classifier (`fc`)."""

    def __init__(self, num_classes: int, image_size: int):
        super().__init__()
        self.layer1 = nn.Sequential(nn.Flatten(), nn.Linear(3 * image_size * image_size, 32), nn.ReLU())
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.fc(self.layer1(x))

'''
TOY_ATTACK_MODULE = '''"""A toy per-model attack: mean test loss minus mean forget loss."""
import math


def loss_gap(predictions) -> dict[str, float]:
    forget, test = predictions["forget"], predictions["test"]
    if not (forget.finite.all() and test.finite.all()):
        return {"loss_gap": math.nan}
    return {"loss_gap": float(test.losses.mean() - forget.losses.mean())}
'''
TOY_ATTACK_ENTRY = '''
MODEL_ATTACKS.append(ModelAttack(
    name="loss_gap", columns=("loss_gap",), compute="unlearnbench.attacks.loss_gap:loss_gap",
    scores=(TableScore("LossGap", "loss_gap", header="loss gap", unit_interval=False),)))
'''
TOY_SCORE_MODULE = '''"""A toy per-example score over the U-LiRA bank: per forget example, the accuracy of the
kind's models that forgot it."""
import numpy as np
import pandas as pd

from .. import io
from ..attacks import ulira
from .forgetting_scores import load_kind


def table(design_path, banks, out_csv, out_md, out_values, models=None, dataset="", model="", labels=None):
    design = ulira.Design.load(design_path)
    values, rows = {}, []
    for kind, paths in banks.items():
        correct = load_kind(design, paths)["pool"].argmax(-1) == design.labels  # (K, F, N)
        forgot = design.forget_mask  # (K, F, N)
        seen = forgot.sum((0, 1)) > 0
        values[kind] = (correct & forgot).sum((0, 1))[seen] / forgot.sum((0, 1))[seen]
        rows.append({"method": kind, "forget_accuracy": float(values[kind].mean()), "n_examples": int(seen.sum())})
    frame = pd.DataFrame(rows)
    with io.atomic_path(out_csv) as tmp:
        frame.to_csv(tmp, index=False)
    io.write_text(out_md, frame.to_markdown(index=False) + "\\n")
    io.save_npz(out_values, **values)


def figure(values_npz, table_csv, png, pdf, title=""):
    import matplotlib.pyplot as plt

    from .figures import save

    frame = pd.read_csv(table_csv)
    fig, ax = plt.subplots()
    ax.bar(frame["method"], frame["forget_accuracy"])
    ax.set_title(title)
    save(fig, png, pdf)
'''
TOY_SCORE_ENTRY = '''
EXAMPLE_SCORES.append(ExampleScore(
    name="toyscore", title="Toy forget accuracy", table="unlearnbench.report.toy_score:table",
    figure="unlearnbench.report.toy_score:figure",
    table_caption="**Toy score**: per method, the mean over forget examples of the accuracy of its models "
                  "that forgot the example.\\n",
    figure_caption="**Toy score** per method.\\n"))
'''
TOY_TABLE_MODULE = '''"""A toy table: the number of seeds per (dataset, model, method)."""
import pandas as pd

from .. import io, scores


def write_seed_counts(metrics_csv, out_csv, out_md) -> pd.DataFrame:
    frame = scores.read_metrics(metrics_csv)
    counts = frame.groupby(["dataset", "model", "method"], sort=False).size().rename("n_seeds").reset_index()
    with io.atomic_path(out_csv) as tmp:
        counts.to_csv(tmp, index=False)
    io.write_text(out_md, counts.to_markdown(index=False) + "\\n")
    return counts
'''
TOY_TABLE_SCRIPT = '''"""results/tables/seed_counts.{csv,md}: seeds per (dataset, model, method)."""

from unlearnbench.logs import logging_to
from unlearnbench.report.seed_counts import write_seed_counts

with logging_to(snakemake.log[0]):
    write_seed_counts(snakemake.input[0], snakemake.output.csv, snakemake.output.md)
'''
TOY_TABLE_RULE = '''

rule table_seed_counts:
    input:
        "results/metrics.csv",
    output:
        csv=report(
            "results/tables/seed_counts.csv",
            caption="../report/table_seed_counts.rst",
            category="Tables",
        ),
        md="results/tables/seed_counts.md",
    log:
        "logs/tables/seed_counts.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/table_seed_counts.py"
'''
TOY_BUILDER = '''

def build_evens(base, labels, p, memorisation=None) -> dict:
    """Forget the first `share` of D's examples with an even label."""
    d = _d(base)
    even = d[labels[d] % 2 == 0]
    return _split(base, d, even[: int(p["share"] * len(even))])

'''
TINY = {
    "datasets": ["toyset"], "models": ["tinymlp"], "seeds": [0], "methods": ["ft"], "device": "cpu",
    "search": {"trials": 0}, "method_params": {"ft": {"epochs": 1}},
    "ulira": {"enabled": True, "dataset": "toyset", "model": "tinymlp", "splits": 4, "forget_sets": 2,
              "forget_fraction": 0.5, "epochs": 2, "methods": ["ft"], "min_samples": 4},
    "scenarios": [{"kind": "random"}, {"kind": "evens", "share": 0.5}],
}
TARGETS = ["results/tables/main.md", "results/tables/seed_counts.csv", "table_toyscore", "figure_toyscore",
           "results/tables/scenarios/evens.csv"]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path}: {old!r} is not there once (has the recipe's file changed?)"
    path.write_text(text.replace(old, new))


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


# (file under src/unlearnbench, text that is there once, what replaces it), recipe by recipe
TOY_EDITS = [
    # a dataset: its facts in catalog.py, its loader in data.py
    ("catalog.py", "\nMODELS: dict", TOY_DATASET_ENTRY + "\nMODELS: dict"),
    ("data.py", "\n# each dataset's loader", TOY_LOADER + "# each dataset's loader"),
    ("data.py", '    "utkface": load_utkface,\n', '    "utkface": load_utkface,\n    "toyset": load_toyset,\n'),
    # a model: its name and cost in catalog.py, its builder in models.py
    ("catalog.py", '    Model("smallcnn", cost=0.2),\n',
     '    Model("smallcnn", cost=0.2),\n    Model("tinymlp", cost=0.05),\n'),
    ("models.py", "\nBUILDERS: dict", TOY_MODEL + "\nBUILDERS: dict"),
    ("models.py", '    "smallcnn": _smallcnn,\n', '    "smallcnn": _smallcnn,\n    "tinymlp": TinyMLP,\n'),
    # a scenario: its kind in methods/__init__.py, its defaults in scenarios.py, its builder in scenario_data.py
    ("methods/__init__.py", '"memorised", "typical")', '"memorised", "typical", "evens")'),
    ("scenarios.py", '    "typical": {"size": None, "stratum": None, "seed": 0},\n',
     '    "typical": {"size": None, "stratum": None, "seed": 0},\n    "evens": {"share": 0.5},\n'),
    ("scenario_data.py", "\nBUILDERS: dict", TOY_BUILDER + "BUILDERS: dict"),
    ("scenario_data.py", '"typical": build_typical,\n', '"typical": build_typical, "evens": build_evens,\n'),
]


def add_toys(repo: Path) -> None:
    src = repo / "src/unlearnbench"
    for name, old, new in TOY_EDITS:
        _edit(src / name, old, new)
    # a per-model attack and a per-example score: a module each, an entry each in attacks/registry.py
    (src / "attacks/loss_gap.py").write_text(TOY_ATTACK_MODULE)
    (src / "report/toy_score.py").write_text(TOY_SCORE_MODULE)
    _append(src / "attacks/registry.py", TOY_ATTACK_ENTRY + TOY_SCORE_ENTRY)
    # a table: its function, its script, its rule and caption, and rule all's list
    (src / "report/seed_counts.py").write_text(TOY_TABLE_MODULE)
    (repo / "workflow/scripts/table_seed_counts.py").write_text(TOY_TABLE_SCRIPT)
    _append(repo / "workflow/rules/report.smk", TOY_TABLE_RULE)
    (repo / "workflow/report/table_seed_counts.rst").write_text("**Seeds** per method and setting.\n")
    _edit(repo / "workflow/rules/common.smk", "        *rules.table_rte.output,\n",
          "        *rules.table_rte.output,\n        *rules.table_seed_counts.output,\n")


def _snakemake(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "PYTHONHASHSEED": "0"}
    proc = subprocess.run(SNAKEMAKE + list(args), cwd=repo, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, f"snakemake {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


@pytest.fixture(scope="module")
def toys(tmp_path_factory) -> Path:
    """A copy of the repository with every toy added, after one run of the toy targets."""
    repo = copy_workflow(tmp_path_factory.mktemp("extended"))
    shutil.copytree(REPO / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    add_toys(repo)
    write_config(repo / "tiny.yaml", **TINY)
    _snakemake(repo, *TARGETS, "--cores", "2", "--configfile", "tiny.yaml")
    return repo


def test_the_copy_imports_its_own_package(toys):
    out = subprocess.run([sys.executable, "-c", "import unlearnbench; print(unlearnbench.__file__)"],
                         env={**os.environ, "PYTHONPATH": str(toys / "src")}, capture_output=True, text=True,
                         check=True).stdout
    assert Path(out.strip()).is_relative_to(toys / "src")


def _main_rows(toys: Path) -> pd.DataFrame:
    """metrics.csv's rows of the main benchmark (the random scenario)."""
    metrics = pd.read_csv(toys / "results/metrics.csv")
    return metrics[metrics["scenario"] == "random"].drop(columns="scenario")


def test_a_toy_dataset_and_model_run_through_the_workflow(toys):
    metrics = _main_rows(toys)
    assert set(zip(metrics["dataset"], metrics["model"])) == {("toyset", "tinymlp")}
    assert list(metrics["method"]) == ["ft", "original", "retrained"]
    assert (metrics["retain_acc"] > 0.9).all(), metrics  # the quadrants are easy: well above chance (0.25)
    splits = np.load(toys / "results/toyset/splits.npz")
    assert len(splits["test"]) == 80 and sum(len(splits[k]) for k in ("retain", "forget", "val")) == 320
    assert (toys / "results/ulira/toyset/tinymlp/banks/ft/split0.npz").exists()


def test_a_toy_per_model_attack_reaches_metrics_and_the_main_table(toys):
    metrics = _main_rows(toys)
    assert list(metrics.columns[:11]) == ["dataset", "model", "method", "seed", "retain_acc", "forget_acc",
                                          "val_acc", "test_acc", "val_mia", "test_mia", "loss_gap"]
    assert metrics["loss_gap"].notna().all() and metrics["val_mia"].notna().all()  # the MIA still runs first
    main = pd.read_csv(toys / "results/tables/main.csv")
    assert {"LossGap_mean", "LossGap_ci", "Indisc_mean"} <= set(main.columns)
    header = next(line for line in (toys / "results/tables/main.md").read_text().splitlines()
                  if line.startswith("| Method"))
    assert re.search(r"test MIA\s*\|\s*loss gap\s*\|\s*RTE", header), header


def test_a_toy_per_example_score_gets_its_table_and_figure(toys):
    table = pd.read_csv(toys / "results/tables/toyscore.csv").set_index("method")
    assert set(table.index) == {"retrained", "original", "ft"}
    assert table["forget_accuracy"].between(0, 1).all()
    values = np.load(toys / "results/ulira/toyset/tinymlp/forgetting/toyscore.npz")
    assert values["original"].size == table.loc["original", "n_examples"] > 0
    assert (toys / "figures/toyscore.png").stat().st_size > 0 and (toys / "figures/toyscore.pdf").exists()
    # the HTML report shows both with the registry's captions
    _snakemake(toys, "--report", "report.html", "table_toyscore", "figure_toyscore", "--configfile", "tiny.yaml")
    html = (toys / "report.html").read_text(errors="replace")
    assert "Toy score</strong>: per method" in html and "Toy score</strong> per method" in html


def test_a_toy_table_is_built_and_in_rule_all(toys):
    counts = pd.read_csv(toys / "results/tables/seed_counts.csv")
    assert dict(zip(counts["method"], counts["n_seeds"])) == {"ft": 1, "original": 1, "retrained": 1}
    # rule all asks for the toy table and every registered per-example score (the built ones
    # forced, so that a dry run of the default target lists them)
    toys_built = ["table_seed_counts", "table_toyscore", "figure_toyscore"]
    dry = _snakemake(toys, "-n", "--configfile", "tiny.yaml", "--forcerun", *toys_built)
    jobs = set(re.findall(r"^(\w+)\s+\d+$", (dry.stdout + dry.stderr).split("Job stats:")[1], flags=re.M))
    assert {*toys_built, "table_epsilon", "figure_epsilon", "table_klom", "figure_klom"} <= jobs, jobs


def test_a_toy_scenario(toys):
    metrics = pd.read_csv(toys / "results/metrics.csv")
    evens = metrics[metrics["scenario"] == "evens"].set_index("method")
    assert set(evens.index) == {"ft", "original", "retrained"}
    splits = np.load(toys / "results/scenarios/evens/toyset/splits.npz")
    labels = np.arange(400) % 4  # the toy dataset's labels, in pool order
    assert len(splits["forget"]) > 0 and (labels[splits["forget"]] % 2 == 0).all()
    assert "ft" in (toys / "results/tables/scenarios/evens.csv").read_text()
