# With search.one_job, rule search_unlearn (search.smk) writes these files.
if not ONE_JOB:

    rule unlearn:
        # One job per (dataset, model, method) unlearns every seed's original: the job's
        # start-up (imports, data) is paid once, not once per seed. Adding a seed reruns
        # the method's job for every seed (the others reproduce their earlier metrics).
        input:
            **(
                {"best": "results/{dataset}/{model}/search/{method}/best.json"}
                if ub_config.search_on(config)
                else {}
            ),
            originals=expand(
                "results/{{dataset}}/{{model}}/original/seed{seed}.safetensors",
                seed=SEEDS,
            ),
            splits="results/{dataset}/splits.npz",
            # with a search, the chosen trial (best.json) wins over method_params
        output:
            **unlearned_outputs(),
        log:
            "logs/{dataset}/{model}/unlearn/{method}.log",
        priority: 10
        conda:
            ENV
        threads: 1
        resources:
            gpu=gpus,
            runtime=minutes("unlearn", models=len(SEEDS)),
            mem_mb=memory,
        params:
            seeds=SEEDS,
            hp=lambda w: config["method_params"].get(w.method, {}),
            data=lambda w: data_options(w.dataset),
            runtime=lambda w: runtime_options(),
        script:
            "../scripts/unlearn.py"


rule metrics:
    input:
        metrics_files(),
    output:
        "results/metrics.csv",
    log:
        "logs/metrics.log",
    localrule: True
    conda:
        ENV
    params:
        not_applicable=not_applicable_rows(),
    script:
        "../scripts/metrics.py"
