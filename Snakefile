# unlearnbench: the Deep Unlearn benchmark as a Snakemake workflow.
# Targets: `all` (default), `metrics`, `table_main`, `figure_retention`, or any output path.

from pathlib import Path

from unlearnbench import config as ub_config
from unlearnbench import locks

# Before Snakemake acts: --unlock never removes the lock of a run still working here
# (unlearnbench/locks.py), and config.yaml, which the `configfile:` directive reads with
# a message naming neither file nor line, is checked to be a YAML mapping first.
try:
    locks.refuse_unlock_beside_a_live_run(Path.cwd())
    if Path("config.yaml").exists():
        ub_config.read_file("config.yaml")
except (locks.LiveRunError, ub_config.ConfigError) as err:
    raise WorkflowError(str(err)) from None


configfile: "config.yaml"


include: "workflow/rules/common.smk"


wildcard_constraints:
    dataset="|".join(DATASETS),
    model="|".join(MODELS),
    seed=r"\d+",
    kind="|".join(REFERENCES),
    method="|".join(METHODS) or "(?!)",
    scenario="|".join(SCENARIOS) or "(?!)",


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/unlearn.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/ulira.smk"
include: "workflow/rules/forgetting.smk"
include: "workflow/rules/scenarios.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
