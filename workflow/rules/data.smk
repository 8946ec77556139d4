# One fetch_data job per dataset downloads it (download: true) or checks it is readable;
# every other job of the dataset depends on it through splits or ulira_splits, so no
# two jobs download into one folder.
rule fetch_data:
    output:
        "results/{dataset}/data.json",
    log:
        "logs/{dataset}/fetch_data.log",
    localrule: True
    conda:
        ENV
    params:
        data=lambda w: {**data_options(), "download": config["download"]},
    script:
        "../scripts/fetch_data.py"


rule splits:
    input:
        "results/{dataset}/data.json",
    output:
        "results/{dataset}/splits.npz",
    log:
        "logs/{dataset}/splits.log",
    localrule: True
    conda:
        ENV
    params:
        fractions=lambda w: config["splits"],
        data=lambda w: data_options(),
    script:
        "../scripts/splits.py"
