# Shared helpers: config validation, names, path and option functions. Parsing imports
# no torch (config and the registries' names are free of it): a dry run, --unlock and the
# re-parse inside every cluster job start fast.
import os
from pathlib import Path

from unlearnbench import allocator, catalog
from unlearnbench import config as ub_config
from unlearnbench import data_files
from unlearnbench import methods as ub_methods
from unlearnbench import warm_start
from unlearnbench.methods import REFERENCES
from unlearnbench.provenance import config_hash

# Exported (not read: no `envvars:`) for the conda environment's post-deploy script,
# which installs the project from this checkout (envs/unlearnbench.post-deploy.sh;
# Snakemake runs it from a copy elsewhere).
os.environ.update(UNLEARNBENCH_ROOT=str(Path(workflow.main_snakefile).resolve().parent))
# glibc's malloc keeps freed tensors of up to 32 MB for reuse in every job process this
# Snakemake starts (the warm-start server included): unlearnbench/allocator.py
os.environ[allocator.VARIABLE] = allocator.tunables(os.environ.get(allocator.VARIABLE))

try:
    ub_config.validate(
        config,
        ub_config.load_schema(workflow.source_path("../schemas/config.schema.yaml")),
    )
except ub_config.ConfigError as err:
    raise WorkflowError(str(err)) from None

# Rule provenance's rerun trigger (params): the config hashed before ulira_common.smk
# completes its `ulira` section (where report.smk used to hash it; results/provenance.json
# holds the hash of the completed config).
CONFIG_HASH = config_hash(config)
DATASETS = config["datasets"]
MODELS = config["models"]
SEEDS = config["seeds"]
# The forgetting scenario of this workflow: the paper's random forget sets (docs/protocol.md §2).
SCENARIO = "random"
# The configured methods defined for it get jobs; the others (a class-wise method in
# the random scenario) get none, only "n/a" rows in results/metrics.csv.
METHODS = [m for m in config["methods"] if ub_methods.applies(m, SCENARIO)]
NOT_APPLICABLE = {
    m: ub_methods.not_applicable_reason(m, SCENARIO)
    for m in config["methods"]
    if not ub_methods.applies(m, SCENARIO)
}
ENV = "../../envs/unlearnbench.yaml"
SEARCH_SEEDS = config["search"]["seeds"]
# search.one_job: one job per method runs the studies, the choice and the final runs
# (rule search_unlearn) instead of the rules search, select_best and unlearn.
ONE_JOB = ub_config.search_one_job(config)
# the originals search_unlearn reads: the final runs' seeds and the search seeds
ORIGINAL_SEEDS = sorted(set(SEEDS) | set(SEARCH_SEEDS))
# The figures of the main results, each figures/{name}.png and .pdf (rule all, gallery).
REPORT_FIGURES = [
    "retention_vs_indiscernibility",
    "rte",
    "rank_heatmap",
    "seed_spread",
    "critical_difference",
]


def data_options(dataset=None):
    """Where the data is; for a model job (`dataset` given), the configured input size.
    Only fetch_data downloads (download false here)."""
    options = {
        "data_dir": config["data_dir"],
        "download": False,
        "verify_checksums": config["verify_checksums"],
    }
    size = config["training"].get(dataset, {}).get("image_size") if dataset else None
    return {**options, "image_size": size} if size else options


def runtime_options():
    return {"device": config["device"], "precision": config["precision"]}


def search_params():
    """The search's settings (one config.SearchSettings), shared by the rules search,
    select_best and search_unlearn."""
    return dict(
        search=lambda w: ub_config.search_settings(
            config, w.dataset, w.model, w.method
        ),
        data=lambda w: data_options(w.dataset),
        runtime=lambda w: runtime_options(),
    )


def unlearned_outputs():
    """Per seed, in SEEDS order: the metrics JSON, and the unlearned weights when the
    config keeps them."""
    out = {
        "metrics": expand(
            "results/{{dataset}}/{{model}}/metrics/{{method}}/seed{seed}.json",
            seed=SEEDS,
        )
    }
    if config["keep_unlearned"]:
        out["models"] = expand(
            "results/{{dataset}}/{{model}}/unlearned/{{method}}/seed{seed}.safetensors",
            seed=SEEDS,
        )
    return out


def metrics_files():
    """Every per-model metrics JSON the configuration asks for, references included,
    of every scenario."""
    return (
        expand(
            "results/{dataset}/{model}/metrics/{method}/seed{seed}.json",
            dataset=DATASETS,
            model=MODELS,
            method=list(REFERENCES) + METHODS,
            seed=SEEDS,
        )
        + scenario_metrics_files()
    )


def not_applicable_rows():
    """(dataset, model, method, seed, reason) of every configured method that does not
    apply to SCENARIO: the metrics collection writes them as n/a rows."""
    return [
        (dataset, model, method, seed, reason)
        for dataset in DATASETS
        for model in MODELS
        for method, reason in NOT_APPLICABLE.items()
        for seed in SEEDS
    ]


# Scenarios other than random (the main benchmark), by name (config `scenarios`).
SCENARIOS = {e["name"]: e for e in ub_config.scenario_entries(config)}
SCENARIO_NAMES = ["random"] + list(SCENARIOS)
# Every configured method has a metrics file in every other scenario: a row, or an "n/a"
# row where it does not apply (written by the scenario job).
SCENARIO_METHODS = config["methods"]


def scenario_metrics_files():
    """The metrics JSONs of every scenario other than random."""
    return [
        path
        for name, entry in SCENARIOS.items()
        for path in expand(
            "results/scenarios/{scenario}/{dataset}/{model}/metrics/{method}/seed{seed}.json",
            scenario=name,
            dataset=ub_config.scenario_datasets(config, entry),
            model=entry["models"] or MODELS,
            method=list(REFERENCES) + SCENARIO_METHODS,
            seed=entry["seeds"] or SEEDS,
        )
    ]


def scenario_split_files():
    """Every scenario's split file (recorded in results/provenance.json)."""
    return [
        f"results/scenarios/{name}/{dataset}/splits.npz"
        for name, entry in SCENARIOS.items()
        for dataset in ub_config.scenario_datasets(config, entry)
    ]


def scenario_split_inputs(wildcards):
    """The random split; for memorised and typical, U-LiRA's design and shadow originals."""
    inputs = {"base": f"results/{wildcards.dataset}/splits.npz"}
    if SCENARIOS[wildcards.scenario]["kind"] in ("memorised", "typical"):
        bank = f"results/ulira/{wildcards.dataset}/{config['ulira']['model']}"
        inputs["design"] = f"{bank}/splits.npz"
        inputs["banks"] = [
            f"{bank}/banks/original/split{k}.npz"
            for k in range(config["ulira"]["splits"])
        ]
    return inputs


def scenario_searches(wildcards):
    """Search settings of the methods a scenario searches in its own jobs: every
    applicable one (`hyperparameters: own`), or those the random scenario does not run
    (`random`); none without a search (config.scenario_searched)."""
    entry = SCENARIOS[wildcards.scenario]
    return {
        m: ub_config.search_settings(config, wildcards.dataset, wildcards.model, m)
        for m in ub_config.scenario_searched(config, entry)
    }


def scenario_borrowed(wildcards):
    """The methods whose random-scenario choice (best.json) a scenario borrows."""
    return ub_config.scenario_borrowed(config, SCENARIOS[wildcards.scenario])


def scenario_inputs(wildcards):
    """The scenario's split file and the random scenario's choices it borrows (none
    with `hyperparameters: own`)."""
    return {
        "splits": f"results/scenarios/{wildcards.scenario}/{wildcards.dataset}/splits.npz",
        "best": expand(
            "results/{dataset}/{model}/search/{method}/best.json",
            dataset=wildcards.dataset,
            model=wildcards.model,
            method=scenario_borrowed(wildcards),
        ),
    }


def scenario_runtime(wildcards, attempt):
    """The runtime resource of one scenario job: its references, one run per method
    and one per trial of each method it searches (one study, on the job's seed)."""
    runs = (
        len(REFERENCES)
        + len(SCENARIO_METHODS)
        + len(ub_config.scenario_searched(config, SCENARIOS[wildcards.scenario]))
        * ub_config.search_trials(config, wildcards.model)
    )
    return minutes("unlearn", models=runs)(wildcards, attempt)


def scenario_outputs():
    """The per-scenario tables and the cross-scenario view, for rule all."""
    if not SCENARIOS:
        return []
    return [*rules.table_scenarios.output, *rules.figure_scenarios.output]


# Cluster resources (used by profiles/slurm; a local run only counts cores). Run time
# in minutes = stage base x dataset cost x model cost x models per job, times the
# attempt number on retries. The bases are estimates for one modern GPU, not measured
# (docs/performance.md measures CPU runs only); measure before relying on them.
STAGE_MINUTES = {
    "train_reference": 60,
    "unlearn": 20,
    "search": 600,
    "ulira_shadow": 600,
    "ulira_unlearn": 240,
    "ulira_search": 900,
}
# Dataset and model cost factors and memory: src/unlearnbench/catalog.py.


def gpus(wildcards=None):
    """One GPU per model job unless the config pins the CPU."""
    return 0 if config["device"] == "cpu" else 1


def minutes(stage, models=1):
    """Run time of a job of `stage` that handles `models` models (e.g. one per seed)."""

    def runtime(wildcards, attempt):
        cost = (
            catalog.DATASETS[wildcards.dataset].cost
            * catalog.MODELS[wildcards.model].cost
            * models
        )
        return max(10, int(STAGE_MINUTES[stage] * cost)) * attempt

    return runtime


def memory(wildcards, attempt):
    return catalog.DATASETS[wildcards.dataset].mem_mb * attempt


include: "ulira_common.smk"
include: "forgetting_common.smk"


# The README gallery: the main figures, U-LiRA's and the search's (rule gallery).
GALLERY_FIGURES = (
    REPORT_FIGURES
    + (["ulira", *EXAMPLE_SCORES] if ULIRA["enabled"] else [])
    + (
        [f"search_{d}_{m}" for d in DATASETS for m in MODELS]
        if ub_config.search_on(config)
        else []
    )
)


def final_outputs():
    """The targets of `all`, the default: the metrics, the provenance, and every table and figure
    the config switches on."""
    return [
        "results/metrics.csv",
        "results/provenance.json",
        *rules.table_main.output,
        *rules.table_rte.output,
        *rules.table_rankings.output,
        *rules.table_critical_difference.output,
        *expand("figures/{name}.{ext}", name=REPORT_FIGURES, ext=("png", "pdf")),
        *(rules.table_hyperparameters.output if ub_config.search_on(config) else []),
        *ulira_outputs(),
        *forgetting_outputs(),
        *scenario_outputs(),
    ]


def check_data():
    """Before any job starts (onstart: not in a dry run): every dataset still to be
    fetched has its files in data_dir, or a download to fetch it."""
    names = DATASETS + (
        [config["ulira"]["dataset"]] if config["ulira"]["enabled"] else []
    )
    todo = [n for n in names if not Path(f"results/{n}/data.json").exists()]
    problems = data_files.problems(todo, config["data_dir"], config["download"])
    if problems:
        raise WorkflowError("\n".join(["missing data:"] + problems))


# Local runs on CPU: each job runs in a child of one warm-start server that imported the
# libraries once (config warm_start; unlearnbench/warm_start.py). Stopped when the run
# ends; it also stops by itself when this process is gone.
WARM_START = {"server": None}


onstart:
    check_data()
    if (
        workflow.local_exec
        and config["warm_start"]
        and warm_start.wanted(config["device"])
    ):
        WARM_START["server"] = warm_start.start("logs/warm_start.log")


onsuccess:
    warm_start.stop(WARM_START["server"])


onerror:
    warm_start.stop(WARM_START["server"])
