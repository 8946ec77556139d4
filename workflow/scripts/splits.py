"""Write the fixed split of one dataset (docs/protocol.md §2)."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.jobs.reference import write_splits
from unlearnbench.logs import logging_to

with logging_to(snakemake.log[0]):
    write_splits(snakemake.wildcards.dataset, snakemake.output[0], **snakemake.params.data,
                 **snakemake.params.fractions)
