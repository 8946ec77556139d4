"""Score one kind of shadow model (a method, original or retrained) with U-LiRA."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.jobs.ulira_attack import attack_job
from unlearnbench.logs import logging_to

with logging_to(snakemake.log[0]):
    attack_job(snakemake.input.splits, list(snakemake.input.banks), snakemake.wildcards.kind,
               snakemake.output.scores, snakemake.output.metrics, **snakemake.params.attack)
