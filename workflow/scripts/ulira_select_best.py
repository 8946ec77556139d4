"""best.json of one method over its U-LiRA search splits."""

from unlearnbench.jobs.ulira import select_best_job
from unlearnbench.logs import logging_to

with logging_to(snakemake.log[0]):
    select_best_job(list(snakemake.input), snakemake.output[0], snakemake.wildcards.method)
