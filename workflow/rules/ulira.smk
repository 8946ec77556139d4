# U-LiRA (docs/protocol.md §6): split design -> shadow originals + retrained models (one job per
# split) -> shadow unlearning (one job per method and split) -> float16 logit banks ->
# per-method attack -> table_ulira, figure_ulira. Config section `ulira`; with
# ulira.search_trials > 0, a U-LiRA-specific search on shadow splits chooses each
# method's hyperparameters.
# Settings and input functions: common.smk (ulira_common.smk).


rule ulira_splits:
    input:
        ulira_checked,
        "results/{dataset}/data.json",
    output:
        f"{ULIRA_DIR}/splits.npz",
    log:
        "logs/ulira/{dataset}/{model}/splits.log",
    wildcard_constraints:
        **ULIRA_CONSTRAINTS,
    localrule: True
    conda:
        ENV
    params:
        design=lambda w: {
            "n_splits": ULIRA["splits"],
            "n_forget_sets": ULIRA["forget_sets"],
            "val_fraction": ULIRA["val_fraction"],
            "forget_fraction": ULIRA["forget_fraction"],
        },
        data=lambda w: data_options(),
    script:
        "../scripts/ulira_splits.py"


rule ulira_shadow:
    input:
        splits=f"{ULIRA_DIR}/splits.npz",
    # One job per split, or one for every split with ulira.one_job.
    output:
        original=ulira_per_split(f"{ULIRA_DIR}/banks/original/split{{split}}.npz"),
        retrained=ulira_per_split(f"{ULIRA_DIR}/banks/retrained/split{{split}}.npz"),
        weights=temp(ulira_per_split(f"{ULIRA_DIR}/shadow/split{{split}}.safetensors")),
    log:
        f"logs/ulira/{{dataset}}/{{model}}/shadow/{ULIRA_JOB}.log",
    wildcard_constraints:
        **ULIRA_CONSTRAINTS,
    conda:
        ENV
    threads: 1
    resources:
        gpu=gpus,
        runtime=minutes(
            "ulira_shadow", models=len(ULIRA_SPLITS) if ULIRA_ONE_JOB else 1
        ),
        mem_mb=memory,
    params:
        splits=ulira_job_splits,
        recipe=lambda w: ub_config.ulira_recipe(config),
        shared_init=ULIRA["shared_init"],
        data=lambda w: data_options(w.dataset),
        runtime=lambda w: runtime_options(),
    script:
        "../scripts/ulira_shadow.py"


rule ulira_unlearn:
    input:
        unpack(ulira_unlearn_inputs),
    # One job per (method, split), or per method for every split with ulira.one_job.
    output:
        ulira_per_split(f"{ULIRA_DIR}/banks/{{method}}/split{{split}}.npz"),
    log:
        f"logs/ulira/{{dataset}}/{{model}}/unlearn/{{method}}/{ULIRA_JOB}.log",
    wildcard_constraints:
        **ULIRA_CONSTRAINTS,
        method="|".join(ULIRA_METHODS) or "(?!)",
    conda:
        ENV
    threads: 1
    resources:
        gpu=gpus,
        runtime=minutes(
            "ulira_unlearn", models=len(ULIRA_SPLITS) if ULIRA_ONE_JOB else 1
        ),
        mem_mb=memory,
    params:
        splits=ulira_job_splits,
        hp=lambda w: config["method_params"].get(w.method, {}),
        # the main search's choice (no U-LiRA search) is capped at U-LiRA's E_max
        epoch_cap=lambda w: None if ULIRA_SEARCH else ub_config.ulira_epoch_cap(config),
        data=lambda w: data_options(w.dataset),
        runtime=lambda w: runtime_options(),
    script:
        "../scripts/ulira_unlearn.py"


rule ulira_search:
    # U-LiRA's own search (ulira.search_trials > 0): one resumable study per (method,
    # search split) on forget set 0; the journal beside the CSV is not an output.
    input:
        splits=f"{ULIRA_DIR}/splits.npz",
        weights=f"{ULIRA_DIR}/shadow/split{{split}}.safetensors",
        retrained=f"{ULIRA_DIR}/banks/retrained/split{{split}}.npz",
    output:
        f"{ULIRA_DIR}/search/{{method}}/split{{split}}.csv",
    log:
        "logs/ulira/{dataset}/{model}/search/{method}/split{split}.log",
    wildcard_constraints:
        **ULIRA_CONSTRAINTS,
        method="|".join(ULIRA_METHODS) or "(?!)",
    conda:
        ENV
    threads: 1
    resources:
        gpu=gpus,
        runtime=minutes("ulira_search"),
        mem_mb=memory,
    params:
        search=lambda w: ub_config.ulira_search_settings(config, w.method),
        data=lambda w: data_options(w.dataset),
        runtime=lambda w: runtime_options(),
    script:
        "../scripts/ulira_search.py"


rule ulira_select_best:
    input:
        ulira_search_csvs,
    output:
        f"{ULIRA_DIR}/search/{{method}}/best.json",
    log:
        "logs/ulira/{dataset}/{model}/search/{method}/best.log",
    wildcard_constraints:
        **ULIRA_CONSTRAINTS,
        method="|".join(ULIRA_METHODS) or "(?!)",
    localrule: True
    conda:
        ENV
    params:
        search=lambda w: ub_config.ulira_search_settings(config, w.method),
    script:
        "../scripts/ulira_select_best.py"


rule ulira_attack:
    input:
        splits=f"{ULIRA_DIR}/splits.npz",
        banks=ulira_banks,
    output:
        scores=f"{ULIRA_DIR}/scores/{{kind}}.npz",
        metrics=f"{ULIRA_DIR}/scores/{{kind}}.json",
    log:
        "logs/ulira/{dataset}/{model}/attack/{kind}.log",
    wildcard_constraints:
        **ULIRA_CONSTRAINTS,
        kind="|".join(ULIRA_KINDS),
    conda:
        ENV
    threads: 1
    params:
        attack=lambda w: {
            "statistic": ULIRA["statistic"],
            "min_samples": ULIRA["min_samples"],
            "targets": ULIRA["target_splits"],
            "holdout": ULIRA["holdout"],
            "model": w.model,
        },
    script:
        "../scripts/ulira_attack.py"


rule table_ulira:
    input:
        ulira_scores("json"),
    output:
        csv=report(
            "results/tables/ulira.csv",
            caption="../report/table_ulira.rst",
            category="U-LiRA",
        ),
        md="results/tables/ulira.md",
    log:
        "logs/tables/ulira.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/table_ulira.py"


rule figure_ulira:
    input:
        ulira_scores("npz"),
    output:
        png=report(
            "figures/ulira.png",
            caption="../report/figure_ulira.rst",
            category="U-LiRA",
        ),
        pdf="figures/ulira.pdf",
    log:
        "logs/figures/ulira.log",
    localrule: True
    conda:
        ENV
    params:
        kinds=ULIRA_KINDS,
        title=(
            f"U-LiRA on {ULIRA_DATASET} / {ULIRA_MODEL}: {ULIRA['splits']} splits x "
            f"{ULIRA['forget_sets']} forget sets, statistic {ULIRA['statistic']}"
        ),
    script:
        "../scripts/figure_ulira.py"
