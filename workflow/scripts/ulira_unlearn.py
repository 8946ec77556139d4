"""Unlearn the F shadow originals of one split with one method; keep the logit bank."""

from unlearnbench.jobs.ulira import ShadowContext, unlearn_shadow_split
from unlearnbench.jobs.unlearn import chosen_hyperparameters
from unlearnbench.logs import logging_to

w = snakemake.wildcards
with logging_to(snakemake.log[0]):
    hp, source = chosen_hyperparameters(w.method, snakemake.params.hp, snakemake.input.get("best"))
    print(f"hyperparameters from {source}: {hp}")
    ctx = ShadowContext(w.dataset, snakemake.input.splits, **snakemake.params.data, **snakemake.params.runtime,
                        threads=snakemake.threads)
    unlearn_shadow_split(ctx, w.model, w.method, int(w.split), hp, snakemake.input.weights, snakemake.output[0],
                         source)
