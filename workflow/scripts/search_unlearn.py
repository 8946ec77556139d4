"""A method's studies, its choice of the best trial and its final unlearning runs in one
job (search.one_job); the same files as the rules search, select_best and unlearn."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.jobs.context import Context
from unlearnbench.jobs.method import search_unlearn_job
from unlearnbench.logs import logging_to

w, p = snakemake.wildcards, snakemake.params
with logging_to(snakemake.log[0]):
    ctx = Context(w.dataset, snakemake.input.splits, **p.data, **p.runtime, threads=snakemake.threads)
    originals = dict(zip(p.original_seeds, snakemake.input.originals))
    search_unlearn_job(ctx, w.model, w.method, p.search_seeds, p.seeds, p.search, originals,
                       snakemake.input.retrained, snakemake.output.trials, snakemake.output.best,
                       snakemake.output.metrics, snakemake.output.get("models"))
