def unlearned_outputs(wildcards=None):
    out = {"metrics": "results/{dataset}/{model}/metrics/{method}/seed{seed}.json"}
    if config["keep_unlearned"]:
        out["model"] = "results/{dataset}/{model}/unlearned/{method}/seed{seed}.safetensors"
    return out


rule unlearn:
    input:
        original="results/{dataset}/{model}/original/seed{seed}.safetensors",
        splits="results/{dataset}/splits.npz",
        # with a search, the chosen trial (best.json) wins over method_params
        **(
            {"best": "results/{dataset}/{model}/search/{method}/best.json"}
            if config["search"]["trials"] > 0
            else {}
        ),
    output:
        **unlearned_outputs(),
    params:
        hp=lambda w: config["method_params"].get(w.method, {}),
        data=lambda w: data_options(),
        runtime=lambda w: runtime_options(),
    log:
        "logs/{dataset}/{model}/unlearn/{method}/seed{seed}.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/unlearn.py"


rule metrics:
    input:
        metrics_files(),
    output:
        "results/metrics.csv",
    log:
        "logs/metrics.log",
    conda:
        ENV
    localrule: True
    script:
        "../scripts/collect_metrics.py"
