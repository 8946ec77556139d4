"""results/tables/ulira.{csv,md}: one row per method, references first."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.report.tables import write_ulira_table

with logging_to(snakemake.log[0]):
    write_ulira_table(list(snakemake.input), snakemake.output.csv, snakemake.output.md)
