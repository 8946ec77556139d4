"""figures/epsilon.{png,pdf}: per-example ε and the challenge's scores per kind."""

from unlearnbench.logs import logging_to
from unlearnbench.report.forgetting import epsilon_figure

with logging_to(snakemake.log[0]):
    epsilon_figure(snakemake.input.values, snakemake.input.table, snakemake.output.png, snakemake.output.pdf,
                   snakemake.params.title)
