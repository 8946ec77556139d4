# Shared helpers: config validation, names, path and option functions.
from unlearnbench import config as ub_config
from unlearnbench.methods import REFERENCES

try:
    ub_config.validate(
        config,
        ub_config.load_schema(workflow.source_path("../schemas/config.schema.yaml")),
    )
except ub_config.ConfigError as err:
    raise WorkflowError(str(err)) from None

DATASETS = config["datasets"]
MODELS = config["models"]
SEEDS = config["seeds"]
METHODS = config["methods"]
ENV = "../../envs/unlearnbench.yaml"


def data_options():
    return {"data_dir": config["data_dir"], "download": config["download"]}


def runtime_options():
    return {"device": config["device"], "precision": config["precision"]}


def unlearned_outputs():
    """Metrics always; the unlearned weights only when the config keeps them."""
    out = {"metrics": "results/{dataset}/{model}/metrics/{method}/seed{seed}.json"}
    if config["keep_unlearned"]:
        out["model"] = (
            "results/{dataset}/{model}/unlearned/{method}/seed{seed}.safetensors"
        )
    return out


def metrics_files():
    """Every per-model metrics JSON the configuration asks for, references included."""
    return expand(
        "results/{dataset}/{model}/metrics/{method}/seed{seed}.json",
        dataset=DATASETS,
        model=MODELS,
        method=list(REFERENCES) + METHODS,
        seed=SEEDS,
    )
