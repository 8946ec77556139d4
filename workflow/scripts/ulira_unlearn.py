"""Unlearn the F shadow originals of each of the job's splits (one, or all with
ulira.one_job) with one method; keep the logit banks."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench import methods
from unlearnbench.jobs.ulira import ShadowContext, unlearn_shadow_split
from unlearnbench.jobs.unlearn import chosen_hyperparameters
from unlearnbench.logs import logging_to
from unlearnbench.search import within_cap

w = snakemake.wildcards
outputs = [snakemake.output[0]] if len(snakemake.output) == 1 else list(snakemake.output)
with logging_to(snakemake.log[0]):
    hp, source = chosen_hyperparameters(w.method, snakemake.params.hp, snakemake.input.get("best"))
    cap = snakemake.params.epoch_cap
    if cap is not None and source["hp_source"] == "search":  # the main search's chosen trial, under its own cap
        hp, source = within_cap(methods.get(w.method).search_space, hp, cap), {**source, "ulira_epoch_cap": cap}
    print(f"hyperparameters from {source}: {hp}")
    ctx = ShadowContext(w.dataset, snakemake.input.splits, **snakemake.params.data, **snakemake.params.runtime,
                        threads=snakemake.threads)
    for split, weights, out in zip(snakemake.params.splits, snakemake.input.weights, outputs, strict=True):
        unlearn_shadow_split(ctx, w.model, w.method, split, hp, weights, out, source)
