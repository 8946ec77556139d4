"""The scenario stage (docs/protocol.md §10): a scenario's split file, then one job per
(scenario, dataset, model, seed) that trains its references and runs every method,
writing the same metrics JSONs as the main stages, under
results/scenarios/{scenario}/{dataset}/{model}/. Hyperparameters (docs/protocol.md §10.8,
the entry's `hyperparameters`): `own`, each method is searched here, on the job's seed,
with the random scenario's budget and settings; `random`, the random scenario's choice
(or the config's) is borrowed, and a method the random scenario does not run (a
class-wise one) is still searched here."""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .. import REFERENCES, data, io, methods, scenario_data
from ..config import SearchSettings
from .context import Context
from .method import search_unlearn_job
from .reference import train_references
from .unlearn import unlearn_job


def memorisation_from_bank(design_path, bank_paths: Sequence, n_pool: int) -> np.ndarray:
    """Per dataset-pool example, Feldman's memorisation from U-LiRA's shadow originals
    (docs/protocol.md §10.7): each split's originals' correct-class confidence, averaged
    over the split's forget sets, IN minus OUT. NaN outside the attack pool."""
    from ..attacks import ulira, ulira_files

    design = ulira.Design.load(design_path)
    if len(bank_paths) != design.n_splits:
        raise ValueError(f"{len(bank_paths)} banks for a design of {design.n_splits} splits")
    conf = np.stack([scenario_data.correct_confidence(ulira_files.read_bank(p, design, k)["logits"],
                                                  design.labels).mean(0) for k, p in enumerate(bank_paths)])
    out = np.full(n_pool, np.nan)
    out[design.pool] = scenario_data.memorisation(design.in_mask, conf)
    return out


def write_scenario_split(entry: dict, dataset: str, base_splits, out, data_dir="data", download=False,
                         design=None, banks: Sequence = (), verify_checksums=True) -> dict:
    """Build the scenario's split file from the random split and the pool's labels
    (and, for memorised/typical, U-LiRA's design and original banks)."""
    pool = data.load_pool(dataset, data_dir, download, verify_checksums=verify_checksums)
    labels = pool.labels.numpy()
    memo = memorisation_from_bank(design, banks, len(labels)) if design else None
    arrays = scenario_data.build(entry, dataset, data.read_splits(base_splits), labels, memo)
    scenario_data.check_forget_size(arrays)
    if memo is not None:
        arrays["memorisation"] = memo
    # the sizes it was drawn for, checked wherever it is read (data.check_splits)
    io.save_npz(out, **arrays, n_train=np.int64(pool.n_train), n_pool=np.int64(len(labels)))
    print(scenario_data.info_of(arrays))
    return arrays


def not_applicable(method: str, reason: str, out) -> dict:
    """The metrics JSON of a method that does not apply to the scenario: no numbers,
    `applicable` false and the method's reason (tables print "n/a")."""
    values = {c: None for c in ("retain_acc", "forget_acc", "val_acc", "test_acc", "val_mia", "test_mia",
                                "seconds", "nonfinite_fraction")}
    values.update(diverged=False, hp_source="n/a", device="n/a", precision="n/a", applicable=False,
                  na_reason=reason)
    io.write_json(out, values)
    return values


def hp_scenario(scenario: str, method: str, searches: Mapping | None, best_jsons: Mapping | None,
                hyperparameters: str) -> str:
    """The scenario whose hyperparameters `method` used: this one where it is searched
    here, random where it borrows the random scenario's choice; without either (no search:
    the config's), the one the entry's `hyperparameters` names."""
    if method in (searches or {}):
        return scenario
    if method in (best_jsons or {}) or hyperparameters == "random":
        return "random"
    return scenario


def scenario_job(ctx: Context, scenario: str, model: str, seeds: Sequence[int], recipe: dict,
                 method_names: Sequence[str], method_params: Mapping, best_jsons: Mapping | None, out_dir,
                 searches: Mapping[str, SearchSettings] | None = None, hyperparameters: str = "random") -> None:
    """References then every method, seed by seed, under `out_dir`
    (results/scenarios/{scenario}/{dataset}/{model}); `best_jsons` maps a method to the
    random scenario's best.json it borrows. `searches` maps a method to its search
    settings: it is searched here on each seed (trials under search/{method}/seed{seed}.csv,
    the choice in search/{method}/best_seed{seed}.json). A method in neither runs with the
    config's hyperparameters. Every metrics JSON records `hp_scenario`: the scenario whose
    search chose its hyperparameters, or, where none did (hp_source config), the one the
    entry's `hyperparameters` names (`own`: this scenario; `random`), whose are the config's."""
    if hyperparameters not in ("own", "random"):
        raise ValueError(f"hyperparameters: {hyperparameters!r}, not own or random")
    both = set(searches or {}) & set(best_jsons or {})
    if both:
        raise ValueError(f"{sorted(both)} both searched here and borrowed from the random scenario")
    kind = scenario_data.info_of(ctx.scenario)["kind"]
    out = Path(out_dir)
    start, cpu = time.perf_counter(), time.process_time()
    for seed in seeds:
        train_references(ctx, model, int(seed), recipe, REFERENCES, out / "init" / f"seed{seed}.safetensors",
                         [out / k / f"seed{seed}.safetensors" for k in REFERENCES],
                         [out / k / f"seed{seed}.json" for k in REFERENCES],
                         [out / "metrics" / k / f"seed{seed}.json" for k in REFERENCES])
    for method in method_names:
        paths = [out / "metrics" / method / f"seed{seed}.json" for seed in seeds]
        reason = methods.not_applicable_reason(method, kind)
        if reason is not None:
            for path in paths:
                not_applicable(method, reason, path)
            continue
        originals = [out / "original" / f"seed{seed}.safetensors" for seed in seeds]
        if method in (searches or {}):
            results = []
            for seed, original, path in zip(seeds, originals, paths):
                trials = out / "search" / method / f"seed{seed}.csv"
                results += search_unlearn_job(ctx, model, method, [seed], [seed], searches[method],
                                              {int(seed): original}, [out / "metrics" / "retrained" / f"seed{seed}.json"],
                                              [trials], trials.with_name(f"best_seed{seed}.json"), [path])
        else:
            results = unlearn_job(ctx, model, method, seeds, method_params.get(method, {}), originals, paths,
                                  best_json=(best_jsons or {}).get(method))
        for path, metrics in zip(paths, results):
            io.write_json(path, {**metrics, "scenario": scenario,
                                 "hp_scenario": hp_scenario(scenario, method, searches, best_jsons, hyperparameters)})
    # CPU seconds besides wall seconds (on a shared machine the wall time measures the others
    # too), and the whole process's (imports and data included)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"scenario {scenario}: {time.perf_counter() - start:.1f} s wall, {time.process_time() - cpu:.1f} s CPU "
          f"for {len(seeds)} seed(s), {len(method_names)} methods; process CPU "
          f"{usage.ru_utime + usage.ru_stime:.1f} s")
