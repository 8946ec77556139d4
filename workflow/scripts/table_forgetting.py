"""results/tables/{name}.{csv,md} and the per-example values of one per-example score of
attacks/registry.py EXAMPLE_SCORES (its `table` function), from the U-LiRA bank."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.attacks.registry import example_score, resolve
from unlearnbench.logs import logging_to

with logging_to(snakemake.log[0]):
    banks = {kind: list(getattr(snakemake.input, kind)) for kind in snakemake.params.kinds}
    job = resolve(example_score(snakemake.params.name).table)
    job(snakemake.input.splits, banks, snakemake.output.csv, snakemake.output.md, snakemake.output.values,
        **snakemake.params.score)
