"""figures/rte.{png,pdf}."""

from unlearnbench.logs import logging_to
from unlearnbench.report.figures import rte

with logging_to(snakemake.log[0]):
    rte(snakemake.input[0], snakemake.output.png, snakemake.output.pdf)
