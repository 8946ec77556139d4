"""best.json of one (dataset, model, method): the trial with the smallest objective norm;
a study without a usable trial fails the job unless search.on_no_complete_trial says
defaults for this method."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.jobs.search import select_best_job
from unlearnbench.logs import logging_to

with logging_to(snakemake.log[0]):
    select_best_job(list(snakemake.input), snakemake.output[0], snakemake.wildcards.method,
                    on_no_complete_trial=snakemake.params.search.on_no_complete_trial)
