"""figures/ulira.{png,pdf}: ROC curves (log-log) and the distribution of P per method."""

from unlearnbench.logs import logging_to
from unlearnbench.ulira_jobs import write_figure

with logging_to(snakemake.log[0]):
    write_figure(dict(zip(snakemake.params.kinds, snakemake.input)), snakemake.output.png, snakemake.output.pdf,
                 snakemake.params.title)
