rule train_reference:
    # One job per (dataset, model, seed) draws the initialisation and trains both
    # references from it, original (retain + forget) then retrained (retain): one
    # process start-up instead of three.
    input:
        splits="results/{dataset}/splits.npz",
    output:
        init="results/{dataset}/{model}/init/seed{seed}.safetensors",
        models=expand(
            "results/{{dataset}}/{{model}}/{kind}/seed{{seed}}.safetensors",
            kind=REFERENCES,
        ),
        infos=expand(
            "results/{{dataset}}/{{model}}/{kind}/seed{{seed}}.json", kind=REFERENCES
        ),
        metrics=expand(
            "results/{{dataset}}/{{model}}/metrics/{kind}/seed{{seed}}.json",
            kind=REFERENCES,
        ),
    log:
        "logs/{dataset}/{model}/references/seed{seed}.log",
    priority: 30
    conda:
        ENV
    threads: 1
    resources:
        gpu=gpus,
        runtime=minutes("train_reference", models=len(REFERENCES)),
        mem_mb=memory,
    params:
        kinds=list(REFERENCES),
        recipe=lambda w: ub_config.recipe(config, w.dataset),
        data=lambda w: data_options(w.dataset),
        runtime=lambda w: runtime_options(),
    script:
        "../scripts/train_reference.py"
