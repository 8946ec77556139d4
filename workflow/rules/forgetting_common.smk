# Settings and input functions of the forgetting-quality and search-trade-off rules
# (included by common.smk; the rules are in forgetting.smk).

from unlearnbench.attacks import registry as ub_registry
from unlearnbench.attacks.registry import example_score

# the per-example scores over the shadow bank, each with a table_{name} and a figure_{name} rule
EXAMPLE_SCORES = [s.name for s in ub_registry.EXAMPLE_SCORES]
FORGETTING_DIR = f"results/ulira/{ULIRA_DATASET}/{ULIRA_MODEL}/forgetting"
FORGETTING_TITLE = (
    f"{ULIRA_DATASET} / {ULIRA_MODEL}: U-LiRA bank of {ULIRA['splits']} splits x "
    f"{ULIRA['forget_sets']} forget sets"
)
SEARCH_SETTINGS = [(d, m) for d in DATASETS for m in MODELS]


def forgetting_inputs(wildcards):
    """The split file and, per kind (retrained, original, each U-LiRA method), its banks
    in split order."""
    base = f"results/ulira/{ULIRA_DATASET}/{ULIRA_MODEL}"
    return {
        "splits": f"{base}/splits.npz",
        **{
            kind: expand(f"{base}/banks/{kind}/split{{split}}.npz", split=ULIRA_SPLITS)
            for kind in ULIRA_KINDS
        },
    }


def forgetting_params():
    """The table jobs' settings; display labels in display order, so that the jobs need
    neither torch nor the method registry."""
    from unlearnbench.report.tables import kind_label, kind_order

    return {
        "models": ULIRA["score_models"],
        "dataset": ULIRA_DATASET,
        "model": ULIRA_MODEL,
        "labels": {k: kind_label(k) for k in kind_order(ULIRA_KINDS)},
    }


def search_figures(ext):
    return [f"figures/search_{d}_{m}.{ext}" for d, m in SEARCH_SETTINGS]


def forgetting_outputs():
    """The forgetting-quality and search-trade-off tables and figures, for rule all."""
    out = []
    if ULIRA["enabled"]:
        for kind in ("table", "figure"):
            out += [
                f for s in EXAMPLE_SCORES for f in getattr(rules, f"{kind}_{s}").output
            ]
    if ub_config.search_on(config):
        out += [*rules.table_search.output, *rules.figure_search.output]
    return out
