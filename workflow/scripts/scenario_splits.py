"""Write one scenario's split file (docs/protocol.md §10) from the random split."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.jobs.scenario import write_scenario_split
from unlearnbench.logs import logging_to

inp = snakemake.input
with logging_to(snakemake.log[0]):
    write_scenario_split(snakemake.params.entry, snakemake.wildcards.dataset, inp.base, snakemake.output[0],
                         **snakemake.params.data, design=inp.get("design"), banks=list(inp.get("banks", [])))
