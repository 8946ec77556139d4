"""results/provenance.json: package versions, Python, machine, git state, config hash, the scenarios' split files."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.provenance import write_provenance

with logging_to(snakemake.log[0]):
    write_provenance(snakemake.config, snakemake.output[0], cwd=snakemake.params.repo,
                     scenario_splits=list(snakemake.input.get("scenario_splits", [])))
