"""Unlearn one seed's original with one method, evaluate it, write its metrics."""

from unlearnbench.jobs import Context, logging_to, unlearn_and_evaluate

w = snakemake.wildcards
with logging_to(snakemake.log[0]):
    ctx = Context(w.dataset, snakemake.input.splits, **snakemake.params.data, **snakemake.params.runtime,
                  threads=snakemake.threads)
    unlearn_and_evaluate(ctx, w.model, w.method, int(w.seed), snakemake.params.hp, snakemake.input.original,
                         snakemake.output.metrics, snakemake.output.get("model"))
