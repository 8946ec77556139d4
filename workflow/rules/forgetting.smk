# Beyond the paper. Per-example forgetting quality from the U-LiRA bank, without
# training anything new (docs/protocol.md §6 for the bank): the NeurIPS 2023 unlearning
# challenge's ε score (table_epsilon, figure_epsilon) and KLOM (table_klom, figure_klom).
# What the hyperparameter search found (docs/protocol.md §5): Pareto fronts, the chosen
# trial and sensitivity per method (table_search, figure_search).
# Every job here reads existing artifacts only and imports neither scikit-learn nor a GPU.
# Settings and input functions: common.smk (forgetting_common.smk).


rule table_epsilon:
    input:
        unpack(forgetting_inputs),
    output:
        csv=report(
            "results/tables/epsilon.csv",
            caption="../report/table_epsilon.rst",
            category="Forgetting quality",
        ),
        md="results/tables/epsilon.md",
        values=f"{FORGETTING_DIR}/epsilon.npz",
    log:
        "logs/tables/epsilon.log",
    localrule: True
    conda:
        ENV
    params:
        kinds=ULIRA_KINDS,
        score=forgetting_params(),
    script:
        "../scripts/table_epsilon.py"


rule table_klom:
    input:
        unpack(forgetting_inputs),
    output:
        csv=report(
            "results/tables/klom.csv",
            caption="../report/table_klom.rst",
            category="Forgetting quality",
        ),
        md="results/tables/klom.md",
        values=f"{FORGETTING_DIR}/klom.npz",
    log:
        "logs/tables/klom.log",
    localrule: True
    conda:
        ENV
    params:
        kinds=ULIRA_KINDS,
        score=forgetting_params(),
    script:
        "../scripts/table_klom.py"


rule figure_epsilon:
    input:
        values=f"{FORGETTING_DIR}/epsilon.npz",
        table="results/tables/epsilon.csv",
    output:
        png=report(
            "figures/epsilon.png",
            caption="../report/figure_epsilon.rst",
            category="Forgetting quality",
        ),
        pdf="figures/epsilon.pdf",
    log:
        "logs/figures/epsilon.log",
    localrule: True
    conda:
        ENV
    params:
        title=f"NeurIPS 2023 challenge score, {FORGETTING_TITLE}",
    script:
        "../scripts/figure_epsilon.py"


rule figure_klom:
    input:
        f"{FORGETTING_DIR}/klom.npz",
    output:
        png=report(
            "figures/klom.png",
            caption="../report/figure_klom.rst",
            category="Forgetting quality",
        ),
        pdf="figures/klom.pdf",
    log:
        "logs/figures/klom.log",
    localrule: True
    conda:
        ENV
    params:
        title=f"KLOM, {FORGETTING_TITLE}",
    script:
        "../scripts/figure_klom.py"


rule table_search:
    input:
        csvs=expand(
            "results/{dataset}/{model}/search/{method}/seed{seed}.csv",
            dataset=DATASETS,
            model=MODELS,
            method=METHODS,
            seed=SEARCH_SEEDS,
        ),
        best=expand(
            "results/{dataset}/{model}/search/{method}/best.json",
            dataset=DATASETS,
            model=MODELS,
            method=METHODS,
        ),
    output:
        csv=report(
            "results/tables/search_tradeoffs.csv",
            caption="../report/table_search.rst",
            category="Search",
        ),
        md="results/tables/search_tradeoffs.md",
    log:
        "logs/tables/search_tradeoffs.log",
    localrule: True
    conda:
        ENV
    params:
        epoch_caps={d: ub_config.epoch_cap(config, d) for d in DATASETS},
        first_is_defaults=config["search"]["start_from_defaults"],
    script:
        "../scripts/table_search.py"


rule figure_search:
    input:
        csvs=rules.table_search.input.csvs,
        best=rules.table_search.input.best,
    output:
        png=[
            report(p, caption="../report/figure_search.rst", category="Search")
            for p in search_figures("png")
        ],
        pdf=search_figures("pdf"),
    log:
        "logs/figures/search_tradeoffs.log",
    localrule: True
    conda:
        ENV
    params:
        settings=SEARCH_SETTINGS,
        epoch_caps={d: ub_config.epoch_cap(config, d) for d in DATASETS},
        first_is_defaults=config["search"]["start_from_defaults"],
    script:
        "../scripts/figure_search.py"
