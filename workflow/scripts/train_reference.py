"""Train the original (retain + forget) or retrained (retain) model of one seed."""

from unlearnbench.jobs.context import Context
from unlearnbench.jobs.reference import train_reference
from unlearnbench.logs import logging_to

w = snakemake.wildcards
with logging_to(snakemake.log[0]):
    ctx = Context(w.dataset, snakemake.input.splits, **snakemake.params.data, **snakemake.params.runtime,
                  threads=snakemake.threads)
    train_reference(ctx, w.model, w.kind, int(w.seed), snakemake.params.recipe, snakemake.input.init,
                    snakemake.output.model, snakemake.output.info, snakemake.output.metrics)
