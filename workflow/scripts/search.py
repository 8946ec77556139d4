"""One hyperparameter study of (dataset, model, method, search seed); resumes its journal."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.jobs.context import Context
from unlearnbench.jobs.search import search_job
from unlearnbench.logs import logging_to

w, p = snakemake.wildcards, snakemake.params
with logging_to(snakemake.log[0]):
    ctx = Context(w.dataset, snakemake.input.splits, **p.data, **p.runtime, threads=snakemake.threads)
    search_job(ctx, w.model, w.method, int(w.seed), p.search, snakemake.input.original, snakemake.input.retrained,
               snakemake.output[0])
