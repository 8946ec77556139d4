"""docs/gallery/*.png: downsized copies of the figures for README, labelled with their data."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.report.gallery import describe_metrics, make_gallery

with logging_to(snakemake.log[0]):
    make_gallery(snakemake.input.figures, snakemake.output, width=snakemake.params.width,
                 footer=describe_metrics(snakemake.input.metrics))
