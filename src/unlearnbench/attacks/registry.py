"""What the workflow measures beyond accuracy, as two registries (docs/extending.md):

- `MODEL_ATTACKS`, per-model attacks run by every evaluation (evaluate.py) beside the
  accuracies: each writes its `columns` into the model's metrics JSON and
  results/metrics.csv (scores.py), and its `scores` become columns of the main table
  (report/tables.py), means over seeds with a t-interval. The population MIA
  (docs/protocol.md §4) is the first entry.
- `EXAMPLE_SCORES`, per-example scores over the U-LiRA shadow bank (docs/protocol.md §6):
  each gets a table job (results/tables/{name}.{csv,md} and its per-example values
  beside the bank) and a figure job (figures/{name}.{png,pdf}) from one rule pattern in
  workflow/rules/forgetting.smk, captions included.

Torch-free and cheap to import (the workflow reads it at parse time): the functions are
named "module:function" and imported when called.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


def resolve(target: str) -> Callable:
    """The function named "package.module:function"."""
    module, _, name = target.partition(":")
    if not name:
        raise ValueError(f"not a 'module:function' name: {target!r}")
    return getattr(importlib.import_module(module), name)


# --- per-model attacks --------------------------------------------------------------------

@dataclass(frozen=True)
class TableScore:
    """One score of the main table from a per-model column: per seed
    `transform(column)` (identity when None), summarised as a mean over seeds ± t-CI.
    A diverged model's column is NaN, and so is the score (shown "diverged")."""

    name: str
    column: str
    decimals: int = 3
    header: str | None = None  # the Markdown/LaTeX header (default: name)
    best: str | None = None  # "max" or "min": the best method per setting is bold
    unit_interval: bool = True  # the score lies in [0, 1]: its CI bounds are clipped to it
    transform: str | None = None  # "module:function" over a numpy array or pandas Series


@dataclass(frozen=True)
class ModelAttack:
    """`compute(predictions)` maps split name (retain, forget, val, test) to
    evaluate.Predictions (logits, per-example losses, correct, finite) and returns a
    float per name in `columns` (NaN where undefined, e.g. on non-finite outputs)."""

    name: str
    columns: tuple[str, ...]
    compute: str
    scores: tuple[TableScore, ...] = ()


MODEL_ATTACKS: list[ModelAttack] = [
    ModelAttack(
        name="mia",
        columns=("val_mia", "test_mia"),
        compute="unlearnbench.attacks.mia:population_mia",
        scores=(
            TableScore("Indisc", "test_mia", best="max", transform="unlearnbench.scores:indiscernibility"),
            TableScore("test_MIA", "test_mia", header="test MIA"),
        ),
    ),
]


def attack_columns() -> list[str]:
    """Every per-model attack column, in registry order (metrics JSON and metrics.csv)."""
    return [c for attack in MODEL_ATTACKS for c in attack.columns]


def table_scores() -> list[TableScore]:
    """Every per-model attack score of the main table, in registry order."""
    return [s for attack in MODEL_ATTACKS for s in attack.scores]


# --- per-example scores over the shadow bank -------------------------------------------------

@dataclass(frozen=True)
class ExampleScore:
    """`table(design_path, banks, out_csv, out_md, out_values, models=, dataset=, model=,
    labels=)` scores every kind (banks: kind -> its bank per split, in split order) and
    writes the table's CSV and Markdown and the per-example values (.npz);
    `figure(values_npz, table_csv, png, pdf, title)` draws them. The captions are the
    reStructuredText of the HTML report (workflow/report/forgetting_*.rst show them)."""

    name: str
    title: str
    table: str
    figure: str
    table_caption: str
    figure_caption: str


EXAMPLE_SCORES: list[ExampleScore] = [
    ExampleScore(
        name="epsilon",
        title="NeurIPS 2023 challenge score",
        table="unlearnbench.report.forgetting:epsilon_job",
        figure="unlearnbench.report.forgetting:epsilon_figure",
        table_caption="""\
**NeurIPS 2023 unlearning challenge score** per method, computed from the U-LiRA shadow
bank without training anything new. Per forget example: ε at δ = 1e-5 between the
logit-scaled confidences under n models that forgot it and under n retrained models that
never saw it (the organisers' single- and double-threshold attacks, capped at 50); points
1, 1/2, 1/4, ... per ε bucket of width 0.5 up to ceil(log(n − 1)). Forget score = mean
points (1 = indistinguishable from retraining, 0 = every example told apart); final score
= forget score × RA/RA_R × TA/TA_R.

How to read it: the retrained row is the noise floor (what an exact unlearner scores with
this many models per side, well below 1 for small n); the original row shows no
unlearning. Unlike U-LiRA's AUC (one attack pooled over examples, 0.5 = ideal), this is a
worst-case attack per example, summarised over examples.
""",
        figure_caption="""\
**NeurIPS 2023 challenge score.** Left: the distribution of per-example ε (share of forget
examples with ε ≤ x) per method, with the points each bucket earns; curves to the left
forget better. Right: forget score and final score (× utility ratios) per method.
""",
    ),
    ExampleScore(
        name="klom",
        title="KLOM",
        table="unlearnbench.report.forgetting:klom_job",
        figure="unlearnbench.report.forgetting:klom_figure",
        table_caption="""\
**KLOM** (KL divergence of margins, Georgiev et al. 2024) per method and role, from the
U-LiRA shadow bank. Per example: D_KL(retrained ‖ unlearned) between the margins
z_y − logsumexp_{j≠y} z_j under n models on each side, binned in 20 bins over their joint
range; reported as percentiles over forget, retain and validation examples.

How to read it: 0 = the unlearned models' margins are distributed as retraining's; larger
= unlike retraining. The retrained row is the noise floor of this bank size (KLOM of two
independent samples of one distribution; large when n is small). Unlike U-LiRA's AUC, it
compares whole output distributions per example, on retained and unseen examples too.
""",
        figure_caption="""\
**KLOM per example**, per method, for forget, retain and validation examples
(box plots, symmetric-log axis): 0 = the margins are distributed as under retraining.
The retrained boxes show the noise floor of this bank size.
""",
    ),
]


def example_score(name: str) -> ExampleScore:
    for score in EXAMPLE_SCORES:
        if score.name == name:
            return score
    raise KeyError(f"no per-example score {name!r}; registered: {', '.join(s.name for s in EXAMPLE_SCORES)}")
