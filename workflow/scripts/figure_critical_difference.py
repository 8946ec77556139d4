"""figures/critical_difference.{png,pdf}."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.report.figures import critical_difference

with logging_to(snakemake.log[0]):
    critical_difference(snakemake.input.cd, snakemake.input.pvalues, snakemake.output.png, snakemake.output.pdf)
