"""Gather every per-model metrics JSON into results/metrics.csv."""

from unlearnbench.logs import logging_to
from unlearnbench.scores import collect_metrics

with logging_to(snakemake.log[0]):
    collect_metrics(snakemake.input, snakemake.output[0])
