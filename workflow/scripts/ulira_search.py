"""One U-LiRA search study of (method, shadow split): forget set 0 of the split."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.jobs.ulira import ShadowContext, search_job
from unlearnbench.logs import logging_to

w, p = snakemake.wildcards, snakemake.params
with logging_to(snakemake.log[0]):
    ctx = ShadowContext(w.dataset, snakemake.input.splits, **p.data, **p.runtime, threads=snakemake.threads)
    search_job(ctx, w.model, w.method, int(w.split), p.search, snakemake.input.weights, snakemake.input.retrained,
               snakemake.output[0])
