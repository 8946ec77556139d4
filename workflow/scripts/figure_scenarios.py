"""figures/scenario_rankings.{png,pdf} (ranks per scenario side by side, Kendall's tau) and
figures/scenarios/{scenario}.{png,pdf} (one per scenario)."""

from unlearnbench import warm_start

warm_start.delegate()  # in a child of the run's warm-start server, when it has one

from unlearnbench.logs import logging_to
from unlearnbench.report.scenarios import ranking_figure, scenario_figure

inp, out = snakemake.input, snakemake.output
with logging_to(snakemake.log[0]):
    ranking_figure(inp.ranks, inp.tau, out.png, out.pdf)
    for i, table in enumerate(inp.tables):  # the outputs list each scenario's png, then its pdf
        scenario_figure(table, out.each[2 * i], out.each[2 * i + 1])
