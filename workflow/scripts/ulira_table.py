"""results/tables/ulira.{csv,md}: one row per method, references first."""

from unlearnbench.logs import logging_to
from unlearnbench.ulira_jobs import write_table

with logging_to(snakemake.log[0]):
    write_table(list(snakemake.input), snakemake.output.csv, snakemake.output.md)
