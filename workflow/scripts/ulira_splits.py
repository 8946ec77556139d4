"""U-LiRA split design: validation hold-out, K IN/OUT splits, F forget sets per split."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.jobs.ulira import write_design
from unlearnbench.logs import logging_to

with logging_to(snakemake.log[0]):
    write_design(snakemake.wildcards.dataset, snakemake.output[0], **snakemake.params.design,
                 **snakemake.params.data)
