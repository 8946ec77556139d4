"""Draw and save the initialisation of one (dataset, model, seed)."""

from unlearnbench.jobs.reference import write_init
from unlearnbench.logs import logging_to

w = snakemake.wildcards
with logging_to(snakemake.log[0]):
    write_init(w.dataset, w.model, int(w.seed), snakemake.output[0])
