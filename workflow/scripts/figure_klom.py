"""figures/klom.{png,pdf}: per-example KLOM per kind and role."""

from unlearnbench.logs import logging_to
from unlearnbench.report.forgetting import klom_figure

with logging_to(snakemake.log[0]):
    klom_figure(snakemake.input[0], snakemake.output.png, snakemake.output.pdf, snakemake.params.title)
