# Beyond the paper. Per-example forgetting quality from the U-LiRA bank, without
# training anything new (docs/protocol.md §6 for the bank): one table_{name} and one
# figure_{name} rule per per-example score of attacks/registry.py EXAMPLE_SCORES (the
# NeurIPS 2023 unlearning challenge's ε score, "epsilon", and KLOM, "klom";
# docs/extending.md says how to add one).
# What the hyperparameter search found (docs/protocol.md §5): Pareto fronts, the chosen
# trial and sensitivity per method (table_search, figure_search).
# Every job here reads existing artifacts only and imports neither scikit-learn nor a GPU.
# Settings and input functions: common.smk (forgetting_common.smk).


for score in EXAMPLE_SCORES:

    rule:
        name:
            f"table_{score}"
        input:
            unpack(forgetting_inputs),
        output:
            csv=report(
                f"results/tables/{score}.csv",
                caption="../report/forgetting_table.rst",
                category="Forgetting quality",
            ),
            md=f"results/tables/{score}.md",
            values=f"{FORGETTING_DIR}/{score}.npz",
        log:
            f"logs/tables/{score}.log",
        localrule: True
        conda:
            ENV
        params:
            name=score,
            caption=example_score(score).table_caption,
            kinds=ULIRA_KINDS,
            score=forgetting_params(),
        script:
            "../scripts/table_forgetting.py"

    rule:
        name:
            f"figure_{score}"
        input:
            values=f"{FORGETTING_DIR}/{score}.npz",
            table=f"results/tables/{score}.csv",
        output:
            png=report(
                f"figures/{score}.png",
                caption="../report/forgetting_figure.rst",
                category="Forgetting quality",
            ),
            pdf=f"figures/{score}.pdf",
        log:
            f"logs/figures/{score}.log",
        localrule: True
        conda:
            ENV
        params:
            name=score,
            caption=example_score(score).figure_caption,
            title=f"{example_score(score).title}, {FORGETTING_TITLE}",
        script:
            "../scripts/figure_forgetting.py"


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
