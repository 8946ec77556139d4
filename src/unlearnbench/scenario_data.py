"""Forgetting scenarios' data (docs/protocol.md §10): one builder per kind (scenarios.py
holds the kinds, defaults and checks), the memorisation estimate, the trigger, what a job
applies to the pool, and the success metrics. numpy only (torch inside apply_to_pool).

A scenario's split file holds the usual retain/forget/val/test indices into the dataset
pool plus what a job applies to the pool when it loads it (`apply_to_pool`,
jobs/context.py): relabelled examples, trigger-carrying examples, a label map (sub-class
scenarios train on super-class labels) and the parameters, as JSON under `info`.
Every kind starts from the random scenario's split (`results/{dataset}/splits.npz`): val and
test are unchanged, D = retain ∪ forget is re-partitioned.
"""

from __future__ import annotations

import json
from typing import Callable

import numpy as np

from .attacks.mia import MIN_MEMBERS
from .catalog import DATASETS
from .scenarios import ScenarioError, check

# the split file's arrays that index the dataset pool
INDEX_ARRAYS = ("retain", "forget", "val", "test", "relabel_index", "trigger_index", "test_member")

# --- builders ---------------------------------------------------------------------------

def _d(base: dict) -> np.ndarray:
    return np.sort(np.concatenate([base["retain"], base["forget"]]))


def _split(base: dict, d: np.ndarray, forget: np.ndarray, **extra) -> dict:
    forget = np.sort(np.asarray(forget, dtype=np.int64))
    retain = np.setdiff1d(d, forget)
    return {"retain": retain, "forget": forget, "val": base["val"], "test": base["test"], **extra}


def build_random(base, labels, p, memorisation=None) -> dict:
    return {k: base[k] for k in ("retain", "forget", "val", "test")}


def build_class(base, labels, p, memorisation=None) -> dict:
    """Forget every example of D in class `class` (UNSIR, SalUn, Boundary Unlearning)."""
    d = _d(base)
    return _split(base, d, d[labels[d] == p["class"]])


def build_subclass(base, labels, p, memorisation=None, superclasses=None) -> dict:
    """Forget every example of D of the fine class `member`; every model trains and is
    judged on the super-class labels (label_map), as in the sub-class works."""
    d = _d(base)
    label_map = np.asarray(superclasses, dtype=np.int64)
    return _split(base, d, d[labels[d] == p["member"]], label_map=label_map,
                  test_member=base["test"][labels[base["test"]] == p["member"]])


def build_poison(base, labels, p, memorisation=None) -> dict:
    """Pawelczyk et al.'s backdoor: a `share` of D (drawn among examples whose class is
    not the target) carries the trigger patch and the target label; they are the forget set."""
    d = _d(base)
    rng = np.random.default_rng(p["seed"])
    candidates = d[labels[d] != p["target"]]
    n = int(round(p["share"] * len(d)))
    if n > len(candidates):
        raise ScenarioError(f"share: {n} poisons but only {len(candidates)} examples outside the target class")
    poisoned = np.sort(rng.choice(candidates, size=n, replace=False))
    return _split(base, d, poisoned, trigger_index=poisoned,
                  relabel_index=poisoned, relabel_label=np.full(n, p["target"], dtype=np.int64))


def build_confusion(base, labels, p, memorisation=None) -> dict:
    """SCRUB's interclass confusion (Goel et al.): a `share` of each class of the pair in D
    gets the other class's label; the mislabelled examples are the forget set."""
    d = _d(base)
    rng = np.random.default_rng(p["seed"])
    a, b = p["pair"]
    swapped, new = [], []
    for c, other in ((a, b), (b, a)):
        members = d[labels[d] == c]
        picked = rng.choice(members, size=int(len(members) * p["share"]), replace=False)
        swapped.append(picked)
        new.append(np.full(len(picked), other, dtype=np.int64))
    index, label = np.concatenate(swapped), np.concatenate(new)
    order = np.argsort(index)
    return _split(base, d, index, relabel_index=index[order], relabel_label=label[order])


def _stratum(base, p, memorisation, top: bool) -> dict:
    """RUM's forget set (stratum null): the `size` most (top) or least memorised examples
    of D; with a `stratum` share, `size` drawn at random from that share of D."""
    if memorisation is None:
        raise ScenarioError("memorised/typical scenarios need memorisation scores (the U-LiRA bank)")
    d = _d(base)
    scored = d[np.isfinite(memorisation[d])]
    order = scored[np.argsort(memorisation[scored], kind="stable")]
    size = p["size"] or len(base["forget"])
    k = size if p["stratum"] is None else int(round(p["stratum"] * len(d)))
    stratum = order[-k:] if top else order[:k]
    if size > len(stratum) or k > len(order):
        raise ScenarioError(f"size: {size} examples asked from a stratum of {min(k, len(order))} scored examples "
                            "(raise stratum or lower size)")
    forget = stratum if p["stratum"] is None else np.random.default_rng(p["seed"]).choice(
        stratum, size=size, replace=False)
    return _split(base, d, forget)


def build_memorised(base, labels, p, memorisation=None) -> dict:
    """RUM (Zhao et al.): the most memorised examples of D."""
    return _stratum(base, p, memorisation, top=True)


def build_typical(base, labels, p, memorisation=None) -> dict:
    """RUM: the least memorised examples of D."""
    return _stratum(base, p, memorisation, top=False)


# the parameter that sets the forget set's size, named when it is too small
SIZE_KEY = {"class": "class", "subclass": "member", "poison": "share", "confusion": "share", "memorised": "size",
            "typical": "size"}
BUILDERS: dict[str, Callable] = {
    "random": build_random, "class": build_class, "subclass": build_subclass, "poison": build_poison,
    "confusion": build_confusion, "memorised": build_memorised, "typical": build_typical,
}


def build(entry: dict, dataset: str, base: dict, labels: np.ndarray, memorisation=None) -> dict:
    """The scenario's split arrays (and `info`, a JSON string) from the random split
    `base` and the pool's labels."""
    check(entry, dataset)
    kind = entry["kind"]
    extra = {"superclasses": DATASETS[dataset].superclasses} if kind == "subclass" else {}
    arrays = BUILDERS[kind](base, np.asarray(labels), entry["params"], memorisation, **extra)
    info = {"kind": kind, "name": entry["name"], "params": entry["params"], "dataset": dataset,
            "sizes": {k: int(len(arrays[k])) for k in ("retain", "forget", "val", "test")}}
    if memorisation is not None:
        info["forget_memorisation_mean"] = float(np.nanmean(memorisation[arrays["forget"]]))
        info["d_memorisation_mean"] = float(np.nanmean(memorisation[_d(base)]))
    arrays["info"] = np.array(json.dumps(info, sort_keys=True))
    return arrays


def check_forget_size(arrays: dict) -> None:
    """Raise ScenarioError (naming the parameter that sets it) when a built scenario's
    forget set is too small for the membership attack every evaluation runs: its split
    job fails, not every method's job."""
    info, n = info_of(arrays), len(arrays["forget"])
    if info["kind"] != "random" and n < MIN_MEMBERS:
        raise ScenarioError(f"{SIZE_KEY.get(info['kind'], 'kind')}: the {info['name']} scenario's forget set on "
                            f"{info['dataset']} holds {n} examples, under the {MIN_MEMBERS} the membership "
                            "attack needs (docs/protocol.md §4)")


def info_of(arrays: dict) -> dict:
    return json.loads(str(arrays["info"])) if "info" in arrays else {"kind": "random", "params": {}}


# --- memorisation -----------------------------------------------------------------------

def memorisation(in_mask: np.ndarray, confidences: np.ndarray) -> np.ndarray:
    """Feldman's estimator per example: mean correct-class confidence of the models that
    trained on it minus that of the models that did not. `in_mask` (K, N), `confidences`
    (K, N) (one value per shadow model and example; average a split's models first).
    NaN where an example is never (or always) in."""
    in_mask = np.asarray(in_mask, dtype=bool)
    c = np.asarray(confidences, dtype=np.float64)
    n_in, n_out = in_mask.sum(0), (~in_mask).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(in_mask, c, 0).sum(0) / n_in - np.where(~in_mask, c, 0).sum(0) / n_out


def correct_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Softmax probability of the true class; logits (..., N, C), labels (N,)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(-1, keepdims=True)
    return np.take_along_axis(p, np.broadcast_to(labels[..., None], p.shape[:-1] + (1,)), -1)[..., 0]


# --- what a job applies to the pool and measures -----------------------------------------

def trigger_side(image_size: int, patch: float) -> int:
    return max(1, int(round(patch * image_size)))


def add_trigger(images, patch: float):
    """White square in the bottom-right corner of (N, C, H, W) uint8 images (a copy;
    numpy or torch)."""
    out = images.clone() if hasattr(images, "clone") else images.copy()
    side = trigger_side(images.shape[-1], patch)
    out[..., -side:, -side:] = 255
    return out


def apply_to_pool(images, labels, arrays: dict):
    """The pool a scenario's models see (torch tensors in, copies out where changed):
    labels mapped (sub-class) and relabelled, triggers on the poisoned images. Returns
    (images, labels, number of classes, or None when unchanged)."""
    import torch  # here: the module is imported by the workflow's parse, which has no torch

    info, classes = info_of(arrays), None
    if "label_map" in arrays:
        labels = torch.as_tensor(arrays["label_map"], dtype=labels.dtype)[labels]
        classes = int(arrays["label_map"].max()) + 1
    if len(arrays.get("relabel_index", ())):
        labels = labels.clone()
        labels[torch.as_tensor(arrays["relabel_index"])] = torch.as_tensor(arrays["relabel_label"], dtype=labels.dtype)
    if len(arrays.get("trigger_index", ())):
        idx = torch.as_tensor(arrays["trigger_index"])
        images = images.clone()
        images[idx] = add_trigger(images[idx], info["params"]["patch"])
    return images, labels, classes


def class_accuracies(pred, labels, forget) -> dict:
    """Test accuracy on the forgotten class (or sub-class: `forget` a boolean mask) and on
    the rest."""
    pred, labels, forget = map(np.asarray, (pred, labels, forget))
    right = pred == labels
    return {"forget_class_acc": float(right[forget].mean()) if forget.any() else float("nan"),
            "other_classes_acc": float(right[~forget].mean()) if (~forget).any() else float("nan")}


def attack_success(pred_triggered, labels, target: int) -> float:
    """Share of triggered test images whose true class is not the target that are
    predicted as the target (Pawelczyk et al.'s attack success rate)."""
    pred_triggered, labels = np.asarray(pred_triggered), np.asarray(labels)
    eligible = labels != target
    return float((pred_triggered[eligible] == target).mean()) if eligible.any() else float("nan")


def pair_confusion(pred, labels, pair) -> float:
    """Goel et al.'s interclass confusion: the share of test images of the pair's classes
    predicted as the other class of the pair."""
    pred, labels = np.asarray(pred), np.asarray(labels)
    a, b = pair
    mask = (labels == a) | (labels == b)
    if not mask.any():
        return float("nan")
    other = np.where(labels == a, b, a)
    return float((pred[mask] == other[mask]).mean())


def success_metrics(arrays: dict, test_pred, test_labels, test_pool_index, triggered_pred=None) -> dict:
    """The scenario's success metrics from test predictions (and, for poison, predictions on
    the triggered test images); {} for kinds without any."""
    info = info_of(arrays)
    kind, p = info["kind"], info["params"]
    if kind == "class":
        return class_accuracies(test_pred, test_labels, np.asarray(test_labels) == p["class"])
    if kind == "subclass":
        return class_accuracies(test_pred, test_labels, np.isin(test_pool_index, arrays["test_member"]))
    if kind == "poison":
        return {"attack_success": attack_success(triggered_pred, test_labels, p["target"])}
    if kind == "confusion":
        return {"pair_confusion": pair_confusion(test_pred, test_labels, p["pair"])}
    return {}
