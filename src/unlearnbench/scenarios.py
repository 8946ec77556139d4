"""Forgetting scenarios (docs/protocol.md §10): the kinds, each one's parameters with their
documented defaults, the success metrics each is judged by, and the check of a config
entry. Free of torch and numpy: the workflow checks `scenarios:` while it parses.
scenario_data.py builds the splits (one builder per kind) and measures the success metrics.
"""

from __future__ import annotations

import re

from .catalog import DATASETS
from .methods import SCENARIO_KINDS

# Per kind: its parameters and their defaults (docs/protocol.md §10 says why each).
DEFAULTS: dict[str, dict] = {
    "random": {},
    "class": {"class": 0},
    "subclass": {"member": 69},  # CIFAR-100's "rocket" (super-class vehicles 2)
    "poison": {"share": 0.1, "target": 0, "patch": 0.25, "seed": 0},
    "confusion": {"pair": [0, 1], "share": 0.5, "seed": 0},
    "memorised": {"size": None, "stratum": None, "seed": 0},  # RUM's: the `size` most memorised
    "typical": {"size": None, "stratum": None, "seed": 0},
}
KINDS = SCENARIO_KINDS  # the methods' registry names them too (a method's SCENARIOS literal)
if tuple(DEFAULTS) != KINDS:
    raise ImportError(f"scenarios.DEFAULTS defines {tuple(DEFAULTS)}, methods.SCENARIO_KINDS lists {KINDS}")
# The success metrics (metrics JSON keys) each kind adds to the usual ones.
SUCCESS = {
    "class": ("forget_class_acc", "other_classes_acc"),
    "subclass": ("forget_class_acc", "other_classes_acc"),
    "poison": ("attack_success",),
    "confusion": ("pair_confusion",),
}
SUCCESS_COLUMNS = ("forget_class_acc", "other_classes_acc", "attack_success", "pair_confusion")
ENTRY_KEYS = ("kind", "name", "seeds", "models", "hyperparameters", "params")
# Where a scenario other than random takes its hyperparameters (docs/protocol.md §10.8):
# `own`, every applicable method searched on the scenario itself; `random`, the random
# scenario's choice borrowed (a method it does not run is still searched on the scenario).
HYPERPARAMETERS = ("own", "random")
MEMORISATION_KINDS = ("memorised", "typical")
NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class ScenarioError(ValueError):
    pass


# --- config entries ---------------------------------------------------------------------

def complete(entry: dict) -> dict:
    """The entry with its name (default: the kind) and every parameter's default."""
    kind = entry.get("kind")
    if kind not in DEFAULTS:
        raise ScenarioError(f"kind: unknown scenario kind {kind!r}; valid: {', '.join(KINDS)}")
    params = {**(entry.get("params") or {}), **{k: v for k, v in entry.items() if k not in ENTRY_KEYS}}
    unknown = sorted(set(params) - set(DEFAULTS[kind]))
    if unknown:
        raise ScenarioError(f"{unknown[0]}: scenario kind {kind!r} has no parameter "
                            f"{', '.join(map(repr, unknown))}; valid: {', '.join(DEFAULTS[kind]) or 'none'}")
    name = entry.get("name") or kind
    hyperparameters = entry.get("hyperparameters", "own")
    if hyperparameters not in HYPERPARAMETERS:
        raise ScenarioError(f"hyperparameters: {hyperparameters!r} is not one of {', '.join(HYPERPARAMETERS)} "
                            "(own: search every method on the scenario itself; random: borrow the random "
                            "scenario's choice)")
    if not NAME.match(str(name)) or (name == "random") != (kind == "random"):
        raise ScenarioError(f"name: {name!r} must be letters, digits, '_' or '-', and 'random' exactly for "
                            "the random kind")
    return {"kind": kind, "name": name, "seeds": entry.get("seeds"), "models": entry.get("models"),
            # the random scenario's own are its search's (or the config's)
            "hyperparameters": "own" if kind == "random" else hyperparameters,
            "params": {**DEFAULTS[kind], **params}}


def check(entry: dict, dataset: str) -> None:
    """Raise ScenarioError (naming the parameter) when a completed entry cannot be built on
    `dataset`."""
    kind, p, n = entry["kind"], entry["params"], DATASETS[dataset].num_classes

    def need_class(key, value, classes=n):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < classes:
            raise ScenarioError(f"{key}: class {value!r} does not exist in {dataset} (classes 0..{classes - 1})")

    if kind == "class":
        need_class("class", p["class"])
    elif kind == "subclass":
        if DATASETS[dataset].superclasses is None:
            with_super = ", ".join(d for d, facts in DATASETS.items() if facts.superclasses)
            raise ScenarioError(f"kind: 'subclass' needs a dataset with super-classes ({with_super}); "
                                f"{dataset} has none")
        need_class("member", p["member"])
    elif kind == "poison":
        if not 0 < p["share"] < 1:
            raise ScenarioError(f"share: the poisoned share must lie in (0, 1), got {p['share']!r}")
        need_class("target", p["target"])
        if not 0 < p["patch"] <= 0.5:
            raise ScenarioError(f"patch: the trigger's side as a share of the image's must lie in (0, 0.5], "
                                f"got {p['patch']!r}")
    elif kind == "confusion":
        if len(p["pair"]) != 2 or p["pair"][0] == p["pair"][1]:
            raise ScenarioError(f"pair: two different classes, got {p['pair']!r}")
        for c in p["pair"]:
            need_class("pair", c)
        if not 0 < p["share"] <= 0.5:
            raise ScenarioError(f"share: the swapped share of each class must lie in (0, 0.5], got {p['share']!r}")
    elif kind in MEMORISATION_KINDS:
        if p["stratum"] is not None and not 0 < p["stratum"] < 1:
            raise ScenarioError(f"stratum: the share of D ranked by memorisation must lie in (0, 1) "
                                f"(or null), got {p['stratum']!r}")
        if p["size"] is not None and (not isinstance(p["size"], int) or p["size"] < 1):
            raise ScenarioError(f"size: a positive number of examples or null, got {p['size']!r}")
