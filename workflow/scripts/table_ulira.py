"""results/tables/ulira.{csv,md}: one row per method, references first."""

from unlearnbench.logs import logging_to
from unlearnbench.report.tables import write_ulira_table

with logging_to(snakemake.log[0]):
    write_ulira_table(list(snakemake.input), snakemake.output.csv, snakemake.output.md)
