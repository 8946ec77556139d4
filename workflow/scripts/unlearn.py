"""Unlearn every seed's original with one method, evaluate each, write their metrics.

Hyperparameters: the method defaults, updated with config method_params, updated with
the search's chosen trial (best.json) when the search is on; the metrics JSON records
which under "hyperparameters_source"."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.jobs.context import Context
from unlearnbench.jobs.unlearn import unlearn_job
from unlearnbench.logs import logging_to

w = snakemake.wildcards
with logging_to(snakemake.log[0]):
    ctx = Context(w.dataset, snakemake.input.splits, **snakemake.params.data, **snakemake.params.runtime,
                  threads=snakemake.threads)
    unlearn_job(ctx, w.model, w.method, snakemake.params.seeds, snakemake.params.hp, snakemake.input.originals,
                snakemake.output.metrics, snakemake.output.get("models"), snakemake.input.get("best"))
