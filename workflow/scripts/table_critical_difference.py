"""results/tables/critical_difference.{csv,md,tex} and nemenyi_pvalues.csv: Friedman + Nemenyi."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.report.critical_difference import write_cd_table

with logging_to(snakemake.log[0]):
    write_cd_table(snakemake.input[0], snakemake.output.csv, snakemake.output.pvalues, snakemake.output.md,
                   snakemake.output.tex)
