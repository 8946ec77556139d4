"""Gather every per-model metrics JSON into results/metrics.csv, with n/a rows for the
configured methods that do not apply to the workflow's scenario (no job ran them)."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.scores import collect_metrics

with logging_to(snakemake.log[0]):
    collect_metrics(snakemake.input, snakemake.output[0], snakemake.params.not_applicable)
