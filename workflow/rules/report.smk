rule table_main:
    input:
        "results/metrics.csv",
    output:
        csv="results/tables/main.csv",
        md="results/tables/main.md",
    log:
        "logs/tables/main.log",
    conda:
        ENV
    localrule: True
    script:
        "../scripts/table_main.py"


rule figure_retention:
    input:
        "results/tables/main.csv",
    output:
        png="figures/retention_vs_indiscernibility.png",
        pdf="figures/retention_vs_indiscernibility.pdf",
    log:
        "logs/figures/retention_vs_indiscernibility.log",
    conda:
        ENV
    localrule: True
    script:
        "../scripts/figure_retention.py"
