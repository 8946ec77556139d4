"""The unlearning stage: the final runs of a method on each seed's original with the
hyperparameters the search chose (or the defaults), and the in-memory copy that search
trials unlearn."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Mapping, Sequence

import torch

from .. import io, methods, runtime
from .context import Context


def unlearn_and_evaluate(ctx: Context, model: str, method: str, seed: int, hp: dict, original,
                         out_metrics, out_model=None) -> dict:
    """Unlearn the original of one seed with `method` and `hp`, evaluate, write metrics."""
    net = ctx.model(model, original)
    generator = runtime.seed_everything(seed)
    net, seconds = methods.run(method, net, ctx.splits, ctx.spec.num_classes, hp, generator,
                                ctx.precision)
    metrics = {**ctx.evaluate(net), "seconds": seconds, "hyperparameters": methods.hyperparameters(method, hp),
               **ctx.conditions()}
    if out_model:
        io.save_state(out_model, net, {"dataset": ctx.dataset, "model": model, "method": method, "seed": seed})
    io.write_json(out_metrics, metrics)
    print(metrics)
    return metrics


def unlearn_copy(ctx: Context, original: torch.nn.Module, method: str, hp: dict, seed: int):
    """Unlearn a copy of an in-memory original (search trials, shadow models)."""
    generator = runtime.seed_everything(seed)
    return methods.run(method, copy.deepcopy(original), ctx.splits, ctx.spec.num_classes, hp, generator,
                       ctx.precision)


def chosen_hyperparameters(method: str, method_params: Mapping | None = None, best_json=None) -> tuple[dict, dict]:
    """The overrides of the method defaults for a final unlearning run, and where they
    came from: the search's chosen trial wins over `method_params`, which win over the
    defaults. The source's "hp_source" is "config" without a search, "search" with a
    chosen trial, "defaults" when the search completed no trial (best.json without one)."""
    overrides = dict(method_params or {})
    if best_json is None:
        return overrides, {"from": "method_params" if overrides else "defaults", "hp_source": "config"}
    best = io.read_json(best_json)
    if best.get("method") not in (None, method):
        raise io.CorruptFileError(f"{best_json} holds the choice for {best['method']!r}, not {method!r}")
    overrides.update(best["params"])
    hp_source = "defaults" if best.get("trial") is None else "search"
    return overrides, {"from": "search", "file": Path(best_json).as_posix(), "search_seed": best["seed"],
                       "trial": best["trial"], "norm": best["norm"], "hp_source": hp_source}


def unlearn_job(ctx, model: str, method: str, seeds: Sequence[int], method_params, originals: Sequence,
                out_metrics: Sequence, out_models: Sequence | None = None, best_json=None) -> list[dict]:
    """unlearn_and_evaluate for each seed's original, in order, with the
    hyperparameters of chosen_hyperparameters; their origin is recorded in each metrics
    JSON under "hyperparameters_source". One job runs every seed of a (dataset, model,
    method): the start-up (imports, data) is paid once."""
    if not len(seeds) == len(originals) == len(out_metrics) or (out_models and len(out_models) != len(seeds)):
        raise ValueError(f"{len(seeds)} seeds need as many originals, metrics paths (and model paths)")
    hp, source = chosen_hyperparameters(method, method_params, best_json)
    print(f"hyperparameters from {source}: {methods.hyperparameters(method, hp)}")
    results = []
    for i, seed in enumerate(seeds):
        print(f"seed {seed}:", flush=True)
        with io.atomic_path(out_metrics[i]) as tmp:
            metrics = unlearn_and_evaluate(ctx, model, method, int(seed), hp, originals[i], tmp,
                                           out_models[i] if out_models else None)
            metrics["hyperparameters_source"] = source
            metrics["hp_source"] = source["hp_source"]
            tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        results.append(metrics)
    return results
