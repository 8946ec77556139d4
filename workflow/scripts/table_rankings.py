"""results/tables/rankings.{csv,md,tex} and mean_ranks.csv: ranks per setting, mean ranks."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.report.tables import write_rankings_table

with logging_to(snakemake.log[0]):
    write_rankings_table(snakemake.input[0], snakemake.output.csv, snakemake.output.means, snakemake.output.md,
                         snakemake.output.tex)
