"""One hyperparameter study of (dataset, model, method, search seed); resumes its journal."""

from unlearnbench.jobs.context import Context
from unlearnbench.jobs.search import search_job
from unlearnbench.logs import logging_to

w = snakemake.wildcards
with logging_to(snakemake.log[0]):
    ctx = Context(w.dataset, snakemake.input.splits, **snakemake.params.data, **snakemake.params.runtime,
                  threads=snakemake.threads)
    search_job(ctx, w.model, w.method, int(w.seed), snakemake.params.trials, snakemake.params.epoch_cap,
               snakemake.input.original, snakemake.input.retrained, snakemake.output[0],
               method_params=snakemake.params.hp, include_defaults=snakemake.params.include_defaults,
               start_from_defaults=snakemake.params.start_from_defaults)
