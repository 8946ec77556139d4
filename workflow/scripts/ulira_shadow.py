"""Train the original and retrained shadow models of every forget set of one split;
keep their logit banks and (temporarily) the originals' weights."""

from unlearnbench.jobs.ulira import ShadowContext, train_shadow_split
from unlearnbench.logs import logging_to

w = snakemake.wildcards
with logging_to(snakemake.log[0]):
    ctx = ShadowContext(w.dataset, snakemake.input.splits, **snakemake.params.data, **snakemake.params.runtime,
                        threads=snakemake.threads)
    train_shadow_split(ctx, w.model, int(w.split), snakemake.params.recipe, snakemake.output.original,
                       snakemake.output.retrained, snakemake.output.weights, snakemake.params.shared_init)
