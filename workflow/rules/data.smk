rule splits:
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
