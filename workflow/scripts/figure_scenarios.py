"""figures/scenario_rankings.{png,pdf}: ranks per scenario side by side and Kendall's tau."""

from unlearnbench.logs import logging_to
from unlearnbench.report.scenarios import ranking_figure

with logging_to(snakemake.log[0]):
    ranking_figure(snakemake.input.ranks, snakemake.input.tau, snakemake.output.png, snakemake.output.pdf)
