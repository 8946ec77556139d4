# Hyperparameter search (docs/protocol.md §5): one Optuna study per (dataset, model, method,
# search seed), the best trial over the search seeds, and the table of chosen settings.
# Active when config search.trials > 0 (one number, or one per model); the unlearn
# rule then reads best.json.

# Settings (SEARCH_SEEDS, ONE_JOB, ORIGINAL_SEEDS): common.smk.


if ONE_JOB:

    rule search_unlearn:
        # The study journals (beside the CSVs) are deliberately not outputs: a killed or
        # rerun job continues its studies instead of starting over.
        input:
            originals=expand(
                "results/{{dataset}}/{{model}}/original/seed{seed}.safetensors",
                seed=ORIGINAL_SEEDS,
            ),
            retrained=expand(
                "results/{{dataset}}/{{model}}/metrics/retrained/seed{seed}.json",
                seed=SEARCH_SEEDS,
            ),
            splits="results/{dataset}/splits.npz",
        output:
            **unlearned_outputs(),
            trials=expand(
                "results/{{dataset}}/{{model}}/search/{{method}}/seed{seed}.csv",
                seed=SEARCH_SEEDS,
            ),
            best="results/{dataset}/{model}/search/{method}/best.json",
        log:
            "logs/{dataset}/{model}/search_unlearn/{method}.log",
        priority: 20
        conda:
            ENV
        threads: 1
        resources:
            gpu=gpus,
            runtime=lambda w, attempt: (
                minutes("search", len(SEARCH_SEEDS))(w, attempt)
                + minutes("unlearn", len(SEEDS))(w, attempt)
            ),
            mem_mb=memory,
        params:
            **search_params(),
            search_seeds=SEARCH_SEEDS,
            seeds=SEEDS,
            original_seeds=ORIGINAL_SEEDS,
        script:
            "../scripts/search_unlearn.py"

else:

    rule search:
        # The study journal (seed{seed}.journal beside the CSV) is deliberately not an
        # output: a killed or rerun job continues the study instead of starting over.
        input:
            original="results/{dataset}/{model}/original/seed{seed}.safetensors",
            retrained="results/{dataset}/{model}/metrics/retrained/seed{seed}.json",
            splits="results/{dataset}/splits.npz",
        output:
            "results/{dataset}/{model}/search/{method}/seed{seed}.csv",
        log:
            "logs/{dataset}/{model}/search/{method}/seed{seed}.log",
        priority: 20
        conda:
            ENV
        threads: 1
        resources:
            gpu=gpus,
            runtime=minutes("search"),
            mem_mb=memory,
        params:
            **search_params(),
        script:
            "../scripts/search.py"

    rule select_best:
        input:
            expand(
                "results/{{dataset}}/{{model}}/search/{{method}}/seed{seed}.csv",
                seed=SEARCH_SEEDS,
            ),
        output:
            "results/{dataset}/{model}/search/{method}/best.json",
        log:
            "logs/{dataset}/{model}/search/{method}/best.log",
        priority: 20
        localrule: True
        conda:
            ENV
        params:
            search=lambda w: ub_config.search_settings(
                config, w.dataset, w.model, w.method
            ),
        script:
            "../scripts/select_best.py"


rule table_hyperparameters:
    input:
        expand(
            "results/{dataset}/{model}/search/{method}/best.json",
            dataset=DATASETS,
            model=MODELS,
            method=METHODS,
        ),
    output:
        csv=report(
            "results/tables/hyperparameters.csv",
            caption="../report/table_hyperparameters.rst",
            category="Tables",
        ),
        md="results/tables/hyperparameters.md",
    log:
        "logs/tables/hyperparameters.log",
    localrule: True
    conda:
        ENV
    params:
        # (dataset, model, method, reason) of the methods not searched: they do not apply
        not_applicable=sorted({r[:3] + r[4:] for r in not_applicable_rows()}),
    script:
        "../scripts/table_hyperparameters.py"
