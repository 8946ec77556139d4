"""Train the original and retrained shadow models of every forget set of the job's
splits (one, or all with ulira.one_job); keep their logit banks and (temporarily) the
originals' weights."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.jobs.ulira import ShadowContext, train_shadow_split
from unlearnbench.logs import logging_to


def listed(paths):
    return [paths] if isinstance(paths, str) else list(paths)


w = snakemake.wildcards
out = snakemake.output
with logging_to(snakemake.log[0]):
    ctx = ShadowContext(w.dataset, snakemake.input.splits, **snakemake.params.data, **snakemake.params.runtime,
                        threads=snakemake.threads)
    for split, original, retrained, weights in zip(snakemake.params.splits, listed(out.original),
                                                   listed(out.retrained), listed(out.weights), strict=True):
        train_shadow_split(ctx, w.model, split, snakemake.params.recipe, original, retrained, weights,
                           snakemake.params.shared_init)
