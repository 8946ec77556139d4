"""One scenario's seed: its references and every method (docs/protocol.md §10)."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.jobs.context import Context
from unlearnbench.jobs.scenario import scenario_job
from unlearnbench.logs import logging_to

w, p = snakemake.wildcards, snakemake.params
with logging_to(snakemake.log[0]):
    ctx = Context(w.dataset, snakemake.input.splits, **p.data, **p.runtime, threads=snakemake.threads)
    best = dict(zip(p.borrowed, snakemake.input.best, strict=True))
    scenario_job(ctx, w.scenario, w.model, [int(w.seed)], p.recipe, p.methods, p.method_params, best, p.out_dir,
                 p.searches, p.hyperparameters)
