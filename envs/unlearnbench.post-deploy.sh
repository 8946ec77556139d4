#!/usr/bin/env bash
# Snakemake runs this inside the environment of unlearnbench.yaml once it has created it,
# from a copy beside the environment (.snakemake/conda/ or --conda-prefix), so nothing here
# is relative to this file: the workflow exports UNLEARNBENCH_ROOT, the checkout it was
# parsed from (workflow/rules/common.smk). Editable, like README's `pip install -e .`: the
# environment runs the checkout's code as it is. Dependencies come from conda (--no-deps);
# the build uses the environment's setuptools, offline (--no-build-isolation).
set -euo pipefail
root="${UNLEARNBENCH_ROOT:?is not set: create this environment through the workflow (snakemake --sdm conda)}"
if [ ! -f "$root/pyproject.toml" ]; then
    echo "unlearnbench.post-deploy.sh: no pyproject.toml in UNLEARNBENCH_ROOT=$root" >&2
    exit 1
fi
python -m pip install --no-deps --no-build-isolation --editable "$root"
