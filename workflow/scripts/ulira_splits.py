"""U-LiRA split design: validation hold-out, K IN/OUT splits, F forget sets per split."""

from unlearnbench.logs import logging_to
from unlearnbench.ulira_jobs import write_design

with logging_to(snakemake.log[0]):
    write_design(snakemake.wildcards.dataset, snakemake.output[0], **snakemake.params.design,
                 **snakemake.params.data)
