"""figures/search_{dataset}_{model}.{png,pdf}: per method, the norm of every trial and its Pareto front."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.report.search_tradeoffs import write_figures

with logging_to(snakemake.log[0]):
    write_figures(list(snakemake.input.csvs), list(snakemake.input.best), list(snakemake.output.png),
                  list(snakemake.output.pdf), [tuple(s) for s in snakemake.params.settings],
                  snakemake.params.epoch_caps, snakemake.params.first_is_defaults)
