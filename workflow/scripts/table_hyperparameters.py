"""results/tables/hyperparameters.{csv,md}: the chosen setting per dataset, model, method."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.report.hyperparameters import write_hyperparameters_table

with logging_to(snakemake.log[0]):
    write_hyperparameters_table(list(snakemake.input), snakemake.output.csv, snakemake.output.md,
                                snakemake.params.not_applicable)
