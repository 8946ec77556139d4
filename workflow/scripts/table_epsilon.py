"""results/tables/epsilon.{csv,md}: the NeurIPS 2023 challenge's scores per kind, from the U-LiRA bank."""

from unlearnbench.logs import logging_to
from unlearnbench.report.forgetting import epsilon_job

with logging_to(snakemake.log[0]):
    banks = {kind: list(getattr(snakemake.input, kind)) for kind in snakemake.params.kinds}
    epsilon_job(snakemake.input.splits, banks, snakemake.output.csv, snakemake.output.md, snakemake.output.values,
                **snakemake.params.score)
