"""The search stage: one hyperparameter study of (dataset, model, method, search seed)
and the choice of the best trial over the search seeds (the engine is
unlearnbench/search.py). Importing this module does not import torch: select_best_job
runs without it."""

from __future__ import annotations

import hashlib
import json
import math
import time
import traceback
from pathlib import Path
from typing import Mapping, Sequence

import optuna
import pandas as pd

from .. import io
from ..search import (DEFAULTS_ATTR, MAX_BATCH_SIZE, START_FROM_DEFAULTS, TRIALS_PATH, SearchError,
                      defaults_in_space, derived_seed, journal_path, objectives, open_study, oversized_batches,
                      read_trials, run_study, select_best, trials_frame, with_defaults_row)


def search_job(ctx, model: str, method: str, seed: int, n_trials: int, epoch_cap: int, original,
               retrained_metrics, out_csv, journal=None, method_params: Mapping | None = None,
               progress: bool = True, include_defaults: bool = False,
               start_from_defaults: bool = False) -> pd.DataFrame:
    """One study of (dataset, model, method, search seed): each trial unlearns a copy of
    the seed's original with the trial's hyperparameters (unsampled ones: the method's
    defaults updated with `method_params`), evaluates it and scores it against the
    retrained model's metrics of the same seed. Writes the trials CSV atomically.

    With `include_defaults`, the method defaults (with `method_params`) are evaluated
    once as well, unlearning with the model seed as the final `unlearn` rule does, and
    written as the row number -1 (user_attrs_start "method defaults"): they compete in
    the selection (and win ties), so the chosen setting is never worse than the defaults
    on this objective. They stay outside the Optuna trials (their epochs may exceed the
    cap, their values lie outside the space), so the sampler never sees them; the result
    is kept in the journal's study attributes, so a rerun does not redo it.

    With `start_from_defaults`, trial 0 of a new study is the method defaults (with
    `method_params`) moved into the search space (`defaults_in_space`: epochs capped at
    `epoch_cap`, out-of-range values at the range's end), enqueued with Optuna's
    enqueue_trial: a normal trial that counts towards the budget and that the sampler
    learns from."""
    from .. import methods
    from .unlearn import unlearn_copy

    journal = Path(journal) if journal else journal_path(out_csv)
    base = dict(method_params or {})
    methods.hyperparameters(method, base)  # unknown keys fail before any trial
    retrained = io.read_json(retrained_metrics)
    missing = [k for k in ("retain_acc", "forget_acc", "val_acc", "val_mia") if k not in retrained]
    if missing:
        raise io.CorruptFileError(f"{retrained_metrics} lacks {', '.join(missing)}")
    net = ctx.model(model, original)
    limit = MAX_BATCH_SIZE.get(ctx.dataset)
    first_trial = (defaults_in_space(methods.get(method).search_space, methods.hyperparameters(method, base),
                                     epoch_cap) if start_from_defaults else None)

    def evaluate(hp: dict, unlearn_seed: int) -> tuple[tuple, dict]:
        unlearned, seconds = unlearn_copy(ctx, net, method, {**base, **hp}, unlearn_seed)
        metrics = ctx.evaluate(unlearned)
        if metrics.get("diverged"):
            raise FloatingPointError("the unlearned model diverged (non-finite logits)")
        return objectives(metrics, retrained), {"unlearn_seed": unlearn_seed, "unlearn_seconds": seconds, **metrics}

    def objective(hp: dict, trial) -> tuple:
        too_big = oversized_batches(hp, limit)
        if too_big:
            raise optuna.TrialPruned(f"batch size {too_big} > {limit} on {ctx.dataset}")
        values, attrs = evaluate(hp, derived_seed(seed, trial.number))
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return values

    fingerprint = hashlib.sha256(json.dumps({
        "dataset": ctx.dataset, "model": model, "method": method, "seed": seed, "epoch_cap": epoch_cap,
        "method_params": base, "max_batch_size": limit, "original": io.sha256(original),
        **({"start_from_defaults": first_trial} if start_from_defaults else {}),
        "retrained": {k: retrained[k] for k in ("retain_acc", "forget_acc", "val_acc", "val_mia")},
    }, sort_keys=True, default=str).encode()).hexdigest()
    name = f"{ctx.dataset}/{model}/{method}/seed{seed}"
    def evaluate_defaults() -> dict:
        start = time.perf_counter()
        too_big = oversized_batches(methods.hyperparameters(method, base), limit)
        if too_big:
            return {"state": "PRUNED", "values": None, "seconds": 0.0,
                    "user_attrs": {"reason": f"pruned: batch size {too_big} > {limit} on {ctx.dataset}"}}
        try:
            values, attrs = evaluate({}, seed)
        except Exception as err:  # a diverging default is recorded, like a failed trial
            traceback.print_exc()
            return {"state": "FAIL", "values": None, "seconds": time.perf_counter() - start,
                    "user_attrs": {"reason": f"{type(err).__name__}: {' '.join(str(err).split())}"[:500]}}
        if not all(math.isfinite(v) for v in values):
            return {"state": "FAIL", "values": None, "seconds": time.perf_counter() - start,
                    "user_attrs": {"reason": f"non-finite objective values {list(values)}", **attrs}}
        return {"state": "COMPLETE", "values": list(values), "user_attrs": attrs,
                "seconds": time.perf_counter() - start}

    if include_defaults:
        study = open_study(journal, name, fingerprint=fingerprint)
        if DEFAULTS_ATTR not in study.user_attrs:
            result = evaluate_defaults()
            study.set_user_attr(DEFAULTS_ATTR, result)
            shown = result["user_attrs"].get("reason") or "norm {:.4f}".format(math.hypot(*result["values"]))
            print(f"method defaults: {result['state']} in {result['seconds']:.2f} s, {shown}")
    enqueue = []
    if start_from_defaults:
        enqueue.append({**first_trial, "user_attrs": {"start": START_FROM_DEFAULTS}})
    try:
        study = run_study(objective, methods.get(method).search_space, n_trials, journal, name, seed, epoch_cap,
                          progress, fingerprint=fingerprint, enqueue=enqueue)
    except SearchError as err:  # every attempt failed: keep the record; select_best falls back
        print(f"WARNING: {err}")
        study = open_study(journal, name, fingerprint=fingerprint)
    frame = trials_frame(study, n_trials)
    if include_defaults:
        frame = with_defaults_row(frame, study.user_attrs[DEFAULTS_ATTR], methods.hyperparameters(method, base))
    with io.atomic_path(out_csv) as tmp:
        frame.to_csv(tmp, index=False)
    trials = frame[frame["number"] >= 0]
    done = trials[trials["state"] == "COMPLETE"]
    print(f"{name}: {len(done)} complete of {len(trials)} trials; mean {done['seconds'].mean():.2f} s "
          f"per complete trial")
    failures = failure_summary(frame)
    if failures:
        print(f"{name}: trials that did not complete: {failures}")
    return frame


REASON_COLUMN = "user_attrs_reason"


def failure_summary(frame: pd.DataFrame) -> str:
    """'3 FAIL (FloatingPointError: the unlearned model diverged ...), 1 PRUNED (...)':
    the trials of a trials CSV that did not complete, counted by state and reason."""
    failed = frame[frame["state"] != "COMPLETE"]
    if failed.empty:
        return ""
    reasons = failed[REASON_COLUMN] if REASON_COLUMN in failed else pd.Series("", index=failed.index)
    keys = pd.DataFrame({"state": failed["state"], "reason": reasons.fillna("").astype(str).str.slice(0, 160)})
    counts = keys.groupby(["state", "reason"], sort=False).size()
    return "; ".join(f"{n} {state}" + (f" ({reason})" if reason else "") for (state, reason), n in counts.items())




def select_best_job(csvs: Sequence, out_json, method: str | None = None,
                    on_no_complete_trial: str = "fail") -> dict:
    """best.json of one (dataset, model, method) from its per-seed trials CSVs.

    A study (search seed) without a complete trial fails the job with its trials'
    failure reasons, unless `on_no_complete_trial` is "defaults": then the choice is
    made among the studies that completed a trial, and when none did the final runs
    use the method defaults (best.json "hp_source": "defaults", trial null)."""
    if on_no_complete_trial not in ("fail", "defaults"):
        raise ValueError(f"on_no_complete_trial must be 'fail' or 'defaults', got {on_no_complete_trial!r}")
    frames, paths, where = {}, {}, {}
    for path in csvs:
        match = TRIALS_PATH.search(Path(path).as_posix())
        if not match:
            raise ValueError(f"not a search trials path: {path}")
        where = match.groupdict()
        paths[int(where["seed"])] = Path(path).as_posix()
        frames[int(where["seed"])] = read_trials(path)
    method = method or where.get("method")
    empty = {s: failure_summary(f) or "no trials" for s, f in sorted(frames.items())
             if not (f["state"] == "COMPLETE").any()}
    for seed, failures in empty.items():
        print(f"{paths[seed]}: no complete trial: {failures}")
    if empty and on_no_complete_trial == "fail":
        raise SearchError(
            f"{where.get('dataset')}/{where.get('model')}/{method}: the studies of search seed(s) "
            f"{', '.join(map(str, empty))} hold no complete trial ("
            + "; ".join(f"seed {s}: {r}" for s, r in empty.items())
            + "). The reasons of every trial are in its study's log and trials CSV (column "
            f"{REASON_COLUMN}). Fix the cause and rerun (the studies resume), or set "
            f"search.on_no_complete_trial: {{{method}: defaults}} to run the method with its defaults, "
            "flagged [defaults] in every table.")
    if len(empty) == len(frames):  # on_no_complete_trial: defaults, and no study completed a trial
        print(f"WARNING: no complete trial for {method}; the final runs use the method defaults "
              "(hp_source 'defaults')")
        best = {"method": method, "params": {}, "seed": None, "trial": None, "norm": None, "objectives": None,
                "hp_source": "defaults"}
        io.write_json(out_json, {**best, "search_seeds": sorted(frames), "dataset": where.get("dataset"),
                                 "model": where.get("model"), "source": "method defaults: no complete trial",
                                 "failures": {str(s): r for s, r in empty.items()}})
        return best
    best = select_best(frames, method)
    if any(isinstance(v, float) and v.is_integer() for v in best["params"].values()):
        # An int parameter read back as float (its CSV column has gaps): the method's
        # defaults say which are ints. Imported only here: the registry pulls in torch.
        from .. import methods

        defaults = methods.get(method).DEFAULTS if method in methods.names() else {}
        for key, value in best["params"].items():
            if isinstance(defaults.get(key), int) and not isinstance(defaults.get(key), bool):
                best["params"][key] = int(round(value))
    best.update({
        "dataset": where.get("dataset"), "model": where.get("model"),
        "search_seeds": sorted(frames),
        "complete_trials": {str(s): int((f["state"] == "COMPLETE").sum()) for s, f in sorted(frames.items())},
        "source": f"{paths[best['seed']]} trial {best['trial']}",
        "hp_source": "search",
        **({"failures": {str(s): r for s, r in empty.items()}} if empty else {}),
    })
    io.write_json(out_json, best)
    print(best)
    return best
