"""results/tables/scenarios/{scenario}.{csv,md}, scenario_rankings.{csv,md}, scenario_kendall.csv."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.report.scenarios import write_scenario_tables

out = snakemake.output
with logging_to(snakemake.log[0]):
    write_scenario_tables(snakemake.input[0], out.tables, out.ranks, out.tau, out.md)
