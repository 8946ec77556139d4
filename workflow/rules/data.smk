rule splits:
    output:
        "results/{dataset}/splits.npz",
    params:
        fractions=lambda w: config["splits"],
        data=lambda w: data_options(),
    log:
        "logs/{dataset}/splits.log",
    conda:
        ENV
    localrule: True
    script:
        "../scripts/splits.py"
