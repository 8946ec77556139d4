"""figures/ulira.{png,pdf}: ROC curves (log-log) and the distribution of P per method."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.report.figures import ulira_scores

with logging_to(snakemake.log[0]):
    ulira_scores(dict(zip(snakemake.params.kinds, snakemake.input)), snakemake.output.png, snakemake.output.pdf,
                 snakemake.params.title)
