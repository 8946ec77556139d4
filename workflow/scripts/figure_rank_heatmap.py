"""figures/rank_heatmap.{png,pdf}."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.report.figures import rank_heatmap

with logging_to(snakemake.log[0]):
    rank_heatmap(snakemake.input.ranks, snakemake.input.means, snakemake.output.png, snakemake.output.pdf)
