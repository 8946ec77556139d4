"""results/tables/main.{csv,md,tex}: per (dataset, model), one row per method."""

from unlearnbench.logs import logging_to
from unlearnbench.report.tables import write_main_table

with logging_to(snakemake.log[0]):
    write_main_table(snakemake.input[0], snakemake.output.csv, snakemake.output.md, snakemake.output.tex)
