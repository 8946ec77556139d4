rule init:
    output:
        "results/{dataset}/{model}/init/seed{seed}.safetensors",
    log:
        "logs/{dataset}/{model}/init/seed{seed}.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/init.py"


rule train_reference:
    input:
        init="results/{dataset}/{model}/init/seed{seed}.safetensors",
        splits="results/{dataset}/splits.npz",
    output:
        model="results/{dataset}/{model}/{kind}/seed{seed}.safetensors",
        info="results/{dataset}/{model}/{kind}/seed{seed}.json",
        metrics="results/{dataset}/{model}/metrics/{kind}/seed{seed}.json",
    log:
        "logs/{dataset}/{model}/{kind}/seed{seed}.log",
    priority: 30
    conda:
        ENV
    threads: 1
    resources:
        gpu=gpus,
        runtime=minutes("train_reference"),
        mem_mb=memory,
    params:
        recipe=lambda w: ub_config.recipe(config, w.dataset),
        data=lambda w: data_options(w.dataset),
        runtime=lambda w: runtime_options(),
    script:
        "../scripts/train_reference.py"
