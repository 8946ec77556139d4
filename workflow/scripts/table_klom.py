"""results/tables/klom.{csv,md}: KLOM per kind and role (forget, retain, val), from the U-LiRA bank."""

from unlearnbench.logs import logging_to
from unlearnbench.report.forgetting import klom_job

with logging_to(snakemake.log[0]):
    banks = {kind: list(getattr(snakemake.input, kind)) for kind in snakemake.params.kinds}
    klom_job(snakemake.input.splits, banks, snakemake.output.csv, snakemake.output.md, snakemake.output.values,
             **snakemake.params.score)
