# Tables, figures and the HTML report, all from results/metrics.csv. Each table and
# figure has its own target rule (`snakemake figure_rte`) or path (`snakemake figures/rte.png`);
# none of them retrains anything once results/metrics.csv exists.
# `snakemake --report report.html` collects every output marked with report() below.


report: "../report/workflow.rst"


rule table_main:
    input:
        "results/metrics.csv",
    output:
        csv=report(
            "results/tables/main.csv",
            caption="../report/table_main.rst",
            category="Tables",
        ),
        md="results/tables/main.md",
        tex="results/tables/main.tex",
    log:
        "logs/tables/main.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/table_main.py"


rule table_rte:
    input:
        "results/metrics.csv",
    output:
        csv=report(
            "results/tables/rte.csv",
            caption="../report/table_rte.rst",
            category="Tables",
        ),
        md="results/tables/rte.md",
        tex="results/tables/rte.tex",
    log:
        "logs/tables/rte.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/table_rte.py"


rule table_rankings:
    input:
        "results/metrics.csv",
    output:
        csv=report(
            "results/tables/rankings.csv",
            caption="../report/table_rankings.rst",
            category="Tables",
        ),
        means=report(
            "results/tables/mean_ranks.csv",
            caption="../report/table_mean_ranks.rst",
            category="Tables",
        ),
        md="results/tables/rankings.md",
        tex="results/tables/rankings.tex",
    log:
        "logs/tables/rankings.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/table_rankings.py"


rule table_critical_difference:
    input:
        "results/metrics.csv",
    output:
        csv=report(
            "results/tables/critical_difference.csv",
            caption="../report/table_critical_difference.rst",
            category="Statistical tests",
        ),
        pvalues=report(
            "results/tables/nemenyi_pvalues.csv",
            caption="../report/table_nemenyi_pvalues.rst",
            category="Statistical tests",
        ),
        md="results/tables/critical_difference.md",
        tex="results/tables/critical_difference.tex",
    log:
        "logs/tables/critical_difference.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/table_critical_difference.py"


rule figure_retention:
    input:
        "results/tables/main.csv",
    output:
        png=report(
            "figures/retention_vs_indiscernibility.png",
            caption="../report/figure_retention.rst",
            category="Figures",
        ),
        pdf="figures/retention_vs_indiscernibility.pdf",
    log:
        "logs/figures/retention_vs_indiscernibility.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/figure_retention.py"


rule figure_rte:
    input:
        "results/tables/rte.csv",
    output:
        png=report(
            "figures/rte.png",
            caption="../report/figure_rte.rst",
            category="Figures",
        ),
        pdf="figures/rte.pdf",
    log:
        "logs/figures/rte.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/figure_rte.py"


rule figure_rank_heatmap:
    input:
        ranks="results/tables/rankings.csv",
        means="results/tables/mean_ranks.csv",
    output:
        png=report(
            "figures/rank_heatmap.png",
            caption="../report/figure_rank_heatmap.rst",
            category="Figures",
        ),
        pdf="figures/rank_heatmap.pdf",
    log:
        "logs/figures/rank_heatmap.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/figure_rank_heatmap.py"


rule figure_seed_spread:
    input:
        "results/metrics.csv",
    output:
        png=report(
            "figures/seed_spread.png",
            caption="../report/figure_seed_spread.rst",
            category="Figures",
        ),
        pdf="figures/seed_spread.pdf",
    log:
        "logs/figures/seed_spread.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/figure_seed_spread.py"


rule figure_critical_difference:
    input:
        cd="results/tables/critical_difference.csv",
        pvalues="results/tables/nemenyi_pvalues.csv",
    output:
        png=report(
            "figures/critical_difference.png",
            caption="../report/figure_critical_difference.rst",
            category="Figures",
        ),
        pdf="figures/critical_difference.pdf",
    log:
        "logs/figures/critical_difference.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/figure_critical_difference.py"


# What produced the results (README, "Flags"): rewritten whenever metrics.csv is, and
# whenever the resolved config changes (params). A light job: no torch import.
rule provenance:
    input:
        "results/metrics.csv",
        scenario_splits=scenario_split_files(),
    output:
        report(
            "results/provenance.json",
            caption="../report/provenance.rst",
            category="Provenance",
        ),
    log:
        "logs/provenance.log",
    localrule: True
    conda:
        ENV
    params:
        repo=workflow.basedir,
        config_hash=CONFIG_HASH,
    script:
        "../scripts/provenance.py"


# Not part of `all`: `snakemake gallery` refreshes the small PNGs under docs/gallery/ that
# README shows, from the figures of the current run.
rule gallery:
    input:
        metrics="results/metrics.csv",
        figures=expand("figures/{name}.png", name=GALLERY_FIGURES),
    output:
        expand("docs/gallery/{name}.png", name=GALLERY_FIGURES),
    log:
        "logs/gallery.log",
    localrule: True
    conda:
        ENV
    params:
        width=900,
    script:
        "../scripts/gallery.py"
