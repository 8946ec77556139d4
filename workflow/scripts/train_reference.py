"""Draw the initialisation of one (dataset, model, seed) and train its original (retain +
forget) and retrained (retain) models from it."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.jobs.context import Context
from unlearnbench.jobs.reference import train_references
from unlearnbench.logs import logging_to

w, out = snakemake.wildcards, snakemake.output
with logging_to(snakemake.log[0]):
    ctx = Context(w.dataset, snakemake.input.splits, **snakemake.params.data, **snakemake.params.runtime,
                  threads=snakemake.threads)
    train_references(ctx, w.model, int(w.seed), snakemake.params.recipe, snakemake.params.kinds, out.init,
                     out.models, out.infos, out.metrics)
