"""Download one dataset where allowed, check it opens, and record what was found."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench import data, io
from unlearnbench.logs import logging_to

with logging_to(snakemake.log[0]):
    record = data.fetch(snakemake.wildcards.dataset, **snakemake.params.data)
    print(record)
    io.write_json(snakemake.output[0], record)
