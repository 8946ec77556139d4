"""figures/retention_vs_indiscernibility.{png,pdf}."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.report.figures import retention_vs_indiscernibility

with logging_to(snakemake.log[0]):
    retention_vs_indiscernibility(snakemake.input[0], snakemake.output.png, snakemake.output.pdf)
