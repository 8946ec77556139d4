"""results/tables/rte.{csv,md,tex}: run-time efficiency and unlearning seconds per method and setting."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.report.tables import write_rte_table

with logging_to(snakemake.log[0]):
    write_rte_table(snakemake.input[0], snakemake.output.csv, snakemake.output.md, snakemake.output.tex)
