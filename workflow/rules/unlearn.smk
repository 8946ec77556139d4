rule unlearn:
    input:
        **(
            {"best": "results/{dataset}/{model}/search/{method}/best.json"}
            if config["search"]["trials"] > 0
            else {}
        ),
        original="results/{dataset}/{model}/original/seed{seed}.safetensors",
        splits="results/{dataset}/splits.npz",
        # with a search, the chosen trial (best.json) wins over method_params
    output:
        **unlearned_outputs(),
    log:
        "logs/{dataset}/{model}/unlearn/{method}/seed{seed}.log",
    conda:
        ENV
    threads: 1
    resources:
        gpu=gpus,
        runtime=minutes("unlearn"),
        mem_mb=memory,
    params:
        hp=lambda w: config["method_params"].get(w.method, {}),
        data=lambda w: data_options(),
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
    script:
        "../scripts/collect_metrics.py"
