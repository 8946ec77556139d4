"""results/tables/main.{csv,md,tex}: per (dataset, model), one row per method."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.report.tables import write_main_table

with logging_to(snakemake.log[0]):
    write_main_table(snakemake.input[0], snakemake.output.csv, snakemake.output.md, snakemake.output.tex)
