# unlearnbench: the Deep Unlearn benchmark as a Snakemake workflow.
# Targets: `all` (default), `metrics`, `table_main`, `figure_retention`, or any output path.


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
