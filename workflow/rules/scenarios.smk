# Forgetting scenarios (docs/protocol.md §10; config `scenarios`): per scenario other than
# random, its split file, then one job per (scenario, dataset, model, seed) training its
# references and running every method, searched on the scenario or with the random
# scenario's hyperparameters (its `hyperparameters` key), under results/scenarios/{scenario}/;
# per-scenario tables and the cross-scenario view.
# The random scenario is the main benchmark (its paths and tables are the paper's).


rule scenario_splits:
    input:
        unpack(scenario_split_inputs),
    output:
        "results/scenarios/{scenario}/{dataset}/splits.npz",
    log:
        "logs/scenarios/{scenario}/{dataset}/splits.log",
    localrule: True
    conda:
        ENV
    params:
        entry=lambda w: SCENARIOS[w.scenario],
        data=lambda w: data_options(),
    script:
        "../scripts/scenario_splits.py"


rule scenario:
    # One job per seed: the references (trained on what the scenario says) and every
    # method, so the scenario pays one process start-up per seed.
    input:
        unpack(scenario_inputs),
    output:
        init="results/scenarios/{scenario}/{dataset}/{model}/init/seed{seed}.safetensors",
        models=expand(
            "results/scenarios/{{scenario}}/{{dataset}}/{{model}}/{kind}/seed{{seed}}.{ext}",
            kind=REFERENCES,
            ext=["safetensors", "json"],
        ),
        metrics=expand(
            "results/scenarios/{{scenario}}/{{dataset}}/{{model}}/metrics/{method}/seed{{seed}}.json",
            method=list(REFERENCES) + SCENARIO_METHODS,
        ),
    log:
        "logs/scenarios/{scenario}/{dataset}/{model}/seed{seed}.log",
    priority: 5
    conda:
        ENV
    threads: 1
    resources:
        gpu=gpus,
        runtime=scenario_runtime,
        mem_mb=memory,
    params:
        recipe=lambda w: ub_config.recipe(config, w.dataset),
        methods=SCENARIO_METHODS,
        borrowed=scenario_borrowed,  # the methods of input.best, in order
        searches=scenario_searches,  # searched here
        hyperparameters=lambda w: SCENARIOS[w.scenario]["hyperparameters"],
        method_params=config["method_params"],
        data=lambda w: data_options(w.dataset),
        runtime=lambda w: runtime_options(),
        out_dir=lambda w: f"results/scenarios/{w.scenario}/{w.dataset}/{w.model}",
    script:
        "../scripts/scenario.py"


rule table_scenarios:
    input:
        "results/metrics.csv",
    output:
        tables=expand(
            "results/tables/scenarios/{scenario}.{ext}",
            scenario=SCENARIO_NAMES,
            ext=["csv", "md"],
        ),
        ranks=report(
            "results/tables/scenario_rankings.csv",
            caption="../report/table_scenario_rankings.rst",
            category="Scenarios",
        ),
        tau="results/tables/scenario_kendall.csv",
        md="results/tables/scenario_rankings.md",
    log:
        "logs/tables/scenarios.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/table_scenarios.py"


rule figure_scenarios:
    input:
        ranks="results/tables/scenario_rankings.csv",
        tau="results/tables/scenario_kendall.csv",
        tables=expand(
            "results/tables/scenarios/{scenario}.csv", scenario=SCENARIO_NAMES
        ),
    output:
        each=expand(
            "figures/scenarios/{scenario}.{ext}",
            scenario=SCENARIO_NAMES,
            ext=["png", "pdf"],
        ),
        png=report(
            "figures/scenario_rankings.png",
            caption="../report/figure_scenario_rankings.rst",
            category="Scenarios",
        ),
        pdf="figures/scenario_rankings.pdf",
    log:
        "logs/figures/scenario_rankings.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/figure_scenarios.py"
