"""results/tables/search_tradeoffs.{csv,md}: per method, its trials' spread, Pareto front and importances."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.report.search_tradeoffs import write_table

with logging_to(snakemake.log[0]):
    write_table(list(snakemake.input.csvs), list(snakemake.input.best), snakemake.output.csv, snakemake.output.md,
                snakemake.params.epoch_caps, snakemake.params.first_is_defaults)
