"""figures/seed_spread.{png,pdf}."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.report.figures import seed_spread

with logging_to(snakemake.log[0]):
    seed_spread(snakemake.input[0], snakemake.output.png, snakemake.output.pdf)
