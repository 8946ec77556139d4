"""figures/{name}.{png,pdf} of one per-example score of attacks/registry.py EXAMPLE_SCORES
(its `figure` function), from its per-example values and table."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.attacks.registry import example_score, resolve
from unlearnbench.logs import logging_to

with logging_to(snakemake.log[0]):
    figure = resolve(example_score(snakemake.params.name).figure)
    figure(snakemake.input.values, snakemake.input.table, snakemake.output.png, snakemake.output.pdf,
           snakemake.params.title)
