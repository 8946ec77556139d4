# U-LiRA settings and input functions (included by common.smk; the rules are in
# ulira.smk): the checked `ulira` config section, names, wildcard constraints.
import re

try:
    ub_config.validate_ulira(config)  # checks the section only when enabled
except ub_config.ConfigError as err:
    raise WorkflowError(str(err)) from None

ULIRA = config["ulira"]
ULIRA_DATASET = ULIRA["dataset"]
ULIRA_MODEL = ULIRA["model"]
ULIRA_METHODS = ULIRA["methods"]
ULIRA_KINDS = ["retrained", "original"] + ULIRA_METHODS
ULIRA_SPLITS = list(range(ULIRA["splits"]))
ULIRA_SEARCH = ULIRA["search_trials"] > 0
# One job for every split (few start-ups) or one per split (parallel): ulira.one_job
# (config.ulira_one_job).
ULIRA_ONE_JOB = ub_config.ulira_one_job(config)
ULIRA_DIR = "results/ulira/{dataset}/{model}"
ULIRA_CONSTRAINTS = {
    "dataset": re.escape(ULIRA_DATASET),
    "model": re.escape(ULIRA_MODEL),
    "split": r"\d+",
}


def ulira_checked(wildcards):
    """No input: checks a disabled `ulira` section once one of its targets is asked for
    (an enabled one was checked at parse time)."""
    try:
        ub_config.check_ulira(config)
    except ub_config.ConfigError as err:
        raise WorkflowError(str(err)) from None
    return []


def ulira_per_split(pattern):
    """A path pattern with a {split} wildcard, for a job's splits: the pattern itself
    (one job per split), or with ulira.one_job every split's path (one job for all)."""
    if not ULIRA_ONE_JOB:
        return pattern
    return [pattern.replace("{split}", str(k)) for k in ULIRA_SPLITS]


def ulira_job_splits(wildcards):
    """The splits a shadow or shadow-unlearning job handles, in order."""
    return ULIRA_SPLITS if ULIRA_ONE_JOB else [int(wildcards.split)]


# The log of a job over one split, or over all of them (ulira.one_job).
ULIRA_JOB = "all" if ULIRA_ONE_JOB else "split{split}"


def ulira_outputs():
    """The U-LiRA table and figure, for rule all when ulira.enabled."""
    if not ULIRA["enabled"]:
        return []
    return [*rules.table_ulira.output, *rules.figure_ulira.output]


def ulira_scores(ext):
    return expand(
        f"results/ulira/{ULIRA_DATASET}/{ULIRA_MODEL}/scores/{{kind}}.{ext}",
        kind=ULIRA_KINDS,
    )


def ulira_banks(wildcards):
    """One bank per split, in split order."""
    return expand(
        "results/ulira/{dataset}/{model}/banks/{kind}/split{split}.npz",
        dataset=wildcards.dataset,
        model=wildcards.model,
        kind=wildcards.kind,
        split=ULIRA_SPLITS,
    )


def ulira_search_csvs(wildcards):
    """The trials of one method's studies, one per search split."""
    return expand(
        "results/ulira/{dataset}/{model}/search/{method}/split{split}.csv",
        dataset=wildcards.dataset,
        model=wildcards.model,
        method=wildcards.method,
        split=range(ULIRA["search_splits"]),
    )


def ulira_unlearn_inputs(wildcards):
    """The split file, the job's splits' shadow originals and, with a search, the chosen
    hyperparameters: U-LiRA's own search wins, else the main search's choice."""
    base = f"results/ulira/{wildcards.dataset}/{wildcards.model}"
    inputs = {
        "splits": f"{base}/splits.npz",
        "weights": [
            f"{base}/shadow/split{k}.safetensors" for k in ulira_job_splits(wildcards)
        ],
    }
    if ULIRA_SEARCH:
        inputs["best"] = f"{base}/search/{wildcards.method}/best.json"
    elif ub_config.search_on(config):
        main = f"results/{wildcards.dataset}/{wildcards.model}"
        inputs["best"] = f"{main}/search/{wildcards.method}/best.json"
    return inputs
