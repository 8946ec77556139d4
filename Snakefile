# unlearnbench: the Deep Unlearn benchmark as a Snakemake workflow.
# Targets: `all` (default), `metrics`, `table_main`, `figure_retention`, or any output path.


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/unlearn.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/metrics.csv",
        rules.table_main.output,
        rules.figure_retention.output,
    default_target: True
