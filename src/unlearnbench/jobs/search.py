"""The one study runner of the main and the U-LiRA searches (the engine is
unlearnbench/search.py): a study of one (method, search seed or shadow split), written
as a trials CSV, and the choice of the best trial over the studies, written as
best.json. The main search's job (`search_job`) and U-LiRA's (jobs/ulira.py) only say
how a trial unlearns and measures; the objectives, the handling of a failed evaluation
(docs/reference.md S2), the fingerprint, the pruning, the defaults and the CSV are here.
Importing this module does not import torch: select_best_job runs without it."""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import traceback
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pandas as pd

from .. import io
from ..config import SearchSettings
from ..search import (DEFAULTS_ATTR, OBJECTIVES, START_FROM_DEFAULTS, TRIALS_PATH, EvaluationFailed, SearchError,
                      defaults_in_space, derived_seed, journal_path, objectives, open_study, oversized_batches,
                      read_trials, run_study, select_best, trials_frame, with_defaults_row)

METRICS = ("retain_acc", "forget_acc", "val_acc", "val_mia")
"""What a trial's measurement and the reference's metrics must hold (search.objectives)."""


def run_search(name: str, method: str, settings: SearchSettings, seed: int, sampler_seed: int,
               unlearn: Callable, measure: Callable, reference: Mapping, inputs: Mapping, out_csv,
               progress: bool = True, log: Callable = print) -> pd.DataFrame:
    """One resumable study `name`: trial n unlearns with `unlearn(hp, derived_seed(seed,
    n)) -> (model, seconds)` (hp: the method defaults updated with settings.method_params
    and the trial's parameters), measures with `measure(model) -> metrics` and scores
    against `reference` (search.objectives). A measurement that raises or reports
    "diverged", or non-finite objectives, make the trial COMPLETE with infinite
    objectives (the reference's, docs/reference.md S2); a failing `unlearn` makes it FAIL.
    A batch size over settings.max_batch_size prunes it. The journal beside `out_csv` is
    started afresh when `inputs` (what the trials were computed from) or the settings
    change. Writes the trials CSV atomically and returns its frame.

    settings.include_defaults: the method defaults are evaluated once as well, unlearning
    with `seed` as the final runs do, and written as row -1 (user_attrs_start "method
    defaults"): they compete in the selection (and win ties) but stay outside the Optuna
    trials, so the sampler never sees them; the result is kept in the journal's study
    attributes. settings.start_from_defaults: trial 0 of a new study is the method
    defaults moved into the search space (`defaults_in_space`), enqueued with Optuna's
    enqueue_trial, a normal trial that counts towards the budget."""
    from .. import methods

    base = dict(settings.method_params)
    defaults = methods.hyperparameters(method, base)  # unknown keys fail before any trial
    missing = [k for k in METRICS if k not in reference]
    if missing:
        raise io.CorruptFileError(f"the reference metrics of {name} lack {', '.join(missing)}")
    space = methods.get(method).search_space
    first_trial = defaults_in_space(space, defaults, settings.epoch_cap) if settings.start_from_defaults else None
    limit = settings.max_batch_size

    def evaluate(hp: dict, unlearn_seed: int, record: Callable) -> tuple:
        model, seconds = unlearn({**base, **hp}, unlearn_seed)
        record({"unlearn_seed": unlearn_seed, "unlearn_seconds": seconds})
        try:
            metrics = measure(model)
            record(metrics)
            if metrics.get("diverged"):
                raise FloatingPointError("the unlearned model diverged (non-finite logits)")
            return objectives(metrics, reference)
        except Exception as err:
            raise EvaluationFailed(f"{type(err).__name__}: {err}") from err

    def objective(hp: dict, trial) -> tuple:
        too_big = oversized_batches(hp, limit)
        if too_big:
            import optuna

            raise optuna.TrialPruned(f"batch size {too_big} > {limit}")
        return evaluate(hp, derived_seed(seed, trial.number),
                        lambda attrs: [trial.set_user_attr(k, v) for k, v in attrs.items()])

    def evaluate_defaults() -> dict:
        start, attrs = time.perf_counter(), {}
        too_big = oversized_batches(defaults, limit)
        if too_big:
            return {"state": "PRUNED", "values": None, "seconds": 0.0,
                    "user_attrs": {"reason": f"pruned: batch size {too_big} > {limit}"}}
        try:
            values = list(evaluate({}, seed, attrs.update))
            state, reason = "COMPLETE", None
            if not all(math.isfinite(v) for v in values):
                values, reason = [math.inf] * len(values), f"evaluation failed: non-finite objective values {values}"
        except EvaluationFailed as err:
            traceback.print_exc()
            state, values, reason = "COMPLETE", [math.inf] * len(METRICS), f"evaluation failed: {err}"
        except Exception as err:  # a failing default is recorded, like a failed trial
            traceback.print_exc()
            state, values, reason = "FAIL", None, f"{type(err).__name__}: {err}"
        if reason:
            attrs["reason"] = " ".join(reason.split())[:500]
        return {"state": state, "values": values, "user_attrs": attrs, "seconds": time.perf_counter() - start}

    fingerprint = hashlib.sha256(json.dumps({
        **inputs, "method": method, "seed": seed, "sampler_seed": sampler_seed, "epoch_cap": settings.epoch_cap,
        "method_params": base, "max_batch_size": limit,
        **({"start_from_defaults": first_trial} if settings.start_from_defaults else {}),
        "retrained": {k: reference[k] for k in METRICS},
    }, sort_keys=True, default=str).encode()).hexdigest()
    journal = journal_path(out_csv)
    if settings.include_defaults:
        study = open_study(journal, name, fingerprint=fingerprint, log=log)
        if DEFAULTS_ATTR not in study.user_attrs:
            result = evaluate_defaults()
            study.set_user_attr(DEFAULTS_ATTR, result)
            shown = result["user_attrs"].get("reason") or "norm {:.4f}".format(math.hypot(*result["values"]))
            log(f"method defaults: {result['state']} in {result['seconds']:.2f} s, {shown}")
    enqueue = [{**first_trial, "user_attrs": {"start": START_FROM_DEFAULTS}}] if settings.start_from_defaults else []
    try:
        study = run_study(objective, space, settings.trials, journal, name, sampler_seed, settings.epoch_cap,
                          progress, fingerprint=fingerprint, enqueue=enqueue)
    except SearchError as err:  # every attempt failed: keep the record; the selection decides
        log(f"WARNING: {err}")
        study = open_study(journal, name, fingerprint=fingerprint, log=log)
    frame = trials_frame(study, settings.trials)
    if settings.include_defaults:
        frame = with_defaults_row(frame, study.user_attrs[DEFAULTS_ATTR], defaults)
    with io.atomic_path(out_csv) as tmp:
        frame.to_csv(tmp, index=False)
    trials = frame[frame["number"] >= 0]
    done = trials[trials["state"] == "COMPLETE"]
    log(f"{name}: {len(done)} complete of {len(trials)} trials ({len(done) - int(usable(done).sum())} "
        f"with a failed evaluation); mean {done['seconds'].mean():.2f} s per complete trial")
    failures = failure_summary(frame)
    if failures:
        log(f"{name}: trials that did not complete or whose evaluation failed: {failures}")
    return frame


def search_job(ctx, model: str, method: str, seed: int, settings: SearchSettings, original, retrained_metrics,
               out_csv, progress: bool = True) -> pd.DataFrame:
    """One study of (dataset, model, method, search seed): each trial unlearns a copy of
    the seed's original (jobs/unlearn.py unlearn_copy), evaluates it (ctx.evaluate) and
    scores it against the retrained model's metrics of the same seed; the NSGA-III
    sampler is seeded with the model seed, as the reference's."""
    from .unlearn import unlearn_copy

    retrained = io.read_json(retrained_metrics)
    missing = [k for k in METRICS if k not in retrained]
    if missing:
        raise io.CorruptFileError(f"{retrained_metrics} lacks {', '.join(missing)}")
    net = ctx.model(model, original)
    return run_search(f"{ctx.dataset}/{model}/{method}/seed{seed}", method, settings, seed, seed,
                      lambda hp, s: unlearn_copy(ctx, net, method, hp, s), ctx.evaluate, retrained,
                      {"dataset": ctx.dataset, "model": model, "original": io.sha256(original)}, out_csv, progress)


REASON_COLUMN = "user_attrs_reason"


def usable(frame: pd.DataFrame) -> pd.Series:
    """The trials of a trials frame that can be chosen: COMPLETE with finite objectives."""
    finite = frame[list(OBJECTIVES)].apply(pd.to_numeric, errors="coerce").map(math.isfinite).all(axis=1)
    return (frame["state"] == "COMPLETE") & finite


def failure_summary(frame: pd.DataFrame) -> str:
    """'3 FAIL (RuntimeError: ...), 2 COMPLETE (evaluation failed: FloatingPointError: the
    unlearned model diverged ...), 1 PRUNED (...)': the trials of a trials CSV that did not
    complete or whose evaluation failed, counted by state and reason."""
    failed = frame[~usable(frame)]
    if failed.empty:
        return ""
    reasons = failed[REASON_COLUMN] if REASON_COLUMN in failed else pd.Series("", index=failed.index)
    keys = pd.DataFrame({"state": failed["state"], "reason": reasons.fillna("").astype(str).str.slice(0, 160)})
    counts = keys.groupby(["state", "reason"], sort=False).size()
    return "; ".join(f"{n} {state}" + (f" ({reason})" if reason else "") for (state, reason), n in counts.items())


_SPLIT_PATH = re.compile(r"(?P<dataset>[^/]+)/(?P<model>[^/]+)/search/(?P<method>[^/]+)/split(?P<seed>\d+)\.csv$")


def _study_of(path) -> tuple[int, dict, str]:
    """(seed or split, {dataset, model, method}, "seed" or "split") of a trials CSV path."""
    posix = Path(path).as_posix()
    for pattern, kind in ((TRIALS_PATH, "seed"), (_SPLIT_PATH, "split")):
        match = pattern.search(posix)
        if match:
            where = match.groupdict()
            return int(where.pop("seed")), where, kind
    raise ValueError(f"not a search trials path (…/search/{{method}}/seed{{n}}.csv or split{{n}}.csv): {path}")


def select_best_job(csvs: Sequence, out_json, method: str | None = None,
                    on_no_complete_trial: str = "fail") -> dict:
    """best.json of one method from its studies' trials CSVs (search seeds of the main
    search, or shadow splits of U-LiRA's: then "split" and "search_splits" say so).

    A study whose trials all failed or have infinite objectives (no usable trial) fails
    the job with its trials' failure reasons, unless `on_no_complete_trial` is
    "defaults": then the choice is made among the studies with a usable trial, and when
    none has one the runs use the method defaults (best.json "hp_source": "defaults",
    trial null)."""
    if on_no_complete_trial not in ("fail", "defaults"):
        raise ValueError(f"on_no_complete_trial must be 'fail' or 'defaults', got {on_no_complete_trial!r}")
    frames, paths, where, kind = {}, {}, {}, "seed"
    for path in csvs:
        index, where, kind = _study_of(path)
        paths[index] = Path(path).as_posix()
        frames[index] = read_trials(path)
    method = method or where.get("method")
    empty = {s: failure_summary(f) or "no trials" for s, f in sorted(frames.items())
             if not usable(f).any()}
    for index, failures in empty.items():
        print(f"{paths[index]}: no usable trial: {failures}")
    if empty and on_no_complete_trial == "fail":
        raise SearchError(
            f"{where.get('dataset')}/{where.get('model')}/{method}: the studies of search {kind}(s) "
            f"{', '.join(map(str, empty))} hold no complete trial with finite objectives ("
            + "; ".join(f"{kind} {s}: {r}" for s, r in empty.items())
            + "). The reasons of every trial are in its study's log and trials CSV (column "
            f"{REASON_COLUMN}). Fix the cause and rerun (the studies resume), or set "
            f"search.on_no_complete_trial: {{{method}: defaults}} to run the method with its defaults, "
            "flagged [defaults] in every table.")
    extra = {f"search_{kind}s": sorted(frames), "dataset": where.get("dataset"), "model": where.get("model")}
    if len(empty) == len(frames):  # on_no_complete_trial: defaults, and no study has a usable trial
        print(f"WARNING: no usable trial for {method}; the runs use the method defaults (hp_source 'defaults')")
        best = {"method": method, "params": {}, "seed": None, "trial": None, "norm": None, "objectives": None,
                "hp_source": "defaults"}
        io.write_json(out_json, {**best, **extra, "source": "method defaults: no complete trial",
                                 "failures": {str(s): r for s, r in empty.items()}})
        return best
    best = select_best(frames, method)
    _ints_back(best["params"], method)
    best.update({
        **extra, **({"split": best["seed"]} if kind == "split" else {}),
        "complete_trials": {str(s): int((f["state"] == "COMPLETE").sum()) for s, f in sorted(frames.items())},
        "source": f"{paths[best['seed']]} trial {best['trial']}",
        "hp_source": "search",
        **({"failures": {str(s): r for s, r in empty.items()}} if empty else {}),
    })
    io.write_json(out_json, best)
    print(best)
    return best


def _ints_back(params: dict, method: str) -> None:
    """An int parameter read back as float (its CSV column has gaps) becomes an int
    again; the method's defaults say which are ints. The registry (torch) is imported
    only when a float looks like one."""
    if not any(isinstance(v, float) and v.is_integer() for v in params.values()):
        return
    from .. import methods

    defaults = methods.get(method).DEFAULTS if method in methods.names() else {}
    for key, value in params.items():
        if isinstance(defaults.get(key), int) and not isinstance(defaults.get(key), bool):
            params[key] = int(round(value))
